#!/bin/sh
# Plugins built for nbdkit's API version 1 (Debian ships split and
# partitioning that way) load, and the host adapts their callbacks: reads,
# writes and flush go through the v1 slots.
. "$(dirname "$0")/functions.sh"
requires nbdcopy qemu-io cmp sfdisk
dir=${NBDKIT_PLUGINDIR:?}
[ -f "$dir/nbdkit-split-plugin.so" ] || { echo "SKIP: Debian's split plugin is not installed"; exit 77; }

head -c 1M /dev/urandom > "$tmp/a"
head -c 512K /dev/urandom > "$tmp/b"
cat "$tmp/a" "$tmp/b" > "$tmp/ab"
"$NBDCAGE" -v -U - "$dir/nbdkit-split-plugin.so" file="$tmp/a" file="$tmp/b" \
  --run "nbdcopy \"\$uri\" '$tmp/copy'" 2> "$tmp/log"
grep -q 'API v1' "$tmp/log" || { cat "$tmp/log"; fail "split was not loaded as an API v1 plugin"; }
cmp "$tmp/ab" "$tmp/copy" || fail "v1 pread returned wrong data"

# A write with FUA (emulated by a v1 flush).  (Writes into the second file
# are lost by this plugin build under nbdkit too, so only the first is used.)
"$NBDCAGE" -U - "$dir/nbdkit-split-plugin.so" file="$tmp/a" file="$tmp/b" \
  --run "qemu-io -f raw \"\$uri\" -c 'write -P 0x77 4096 16384' -c 'read -P 0x77 4096 16384' -c flush" \
  > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "qemu-io on split"; }
grep -qi 'verification failed' "$tmp/out" && fail "v1 pwrite/pread mismatch"
[ "$(od -An -tx1 -j 20479 -N1 "$tmp/a" | tr -d ' ')" = 77 ] || fail "the write did not reach the file"

if [ -f "$dir/nbdkit-partitioning-plugin.so" ]; then
  head -c 4M /dev/urandom > "$tmp/part"
  "$NBDCAGE" -U - "$dir/nbdkit-partitioning-plugin.so" file="$tmp/part" partition-type=mbr \
    --run "nbdcopy \"\$uri\" '$tmp/disk'"
  sfdisk -d "$tmp/disk" | grep -q 'type=83' || { sfdisk -d "$tmp/disk"; fail "partitioning: no partition table"; }
fi
echo PASS
