#!/bin/sh
# Unmodified plugins from Debian's nbdkit package, given by path, load in
# nbdcage's plugin host and serve correctly.
. "$(dirname "$0")/functions.sh"
requires qemu-io nbdcopy cmp
dir=${NBDKIT_PLUGINDIR:?}
[ -f "$dir/nbdkit-memory-plugin.so" ] || { echo "SKIP: Debian's nbdkit plugins are not installed"; exit 77; }

"$NBDCAGE" -U - "$dir/nbdkit-memory-plugin.so" size=1M \
  --run "qemu-io -f raw \"\$uri\" -c 'write -P 0x5a 1000 3000' -c 'read -P 0x5a 1000 3000' -c 'read -P 0 0 1000'" \
  > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "Debian memory plugin"; }
grep -qi 'verification failed' "$tmp/out" && fail "Debian memory plugin returned wrong data"

head -c 2M /dev/urandom > "$tmp/src"
cp "$tmp/src" "$tmp/disk"
"$NBDCAGE" -U - "$dir/nbdkit-file-plugin.so" file="$tmp/disk" --run "nbdcopy \"\$uri\" '$tmp/copy'"
cmp "$tmp/src" "$tmp/copy" || fail "Debian file plugin read differs"
head -c 2M /dev/urandom > "$tmp/new"
"$NBDCAGE" -U - "$dir/nbdkit-file-plugin.so" "$tmp/disk" --run "nbdcopy '$tmp/new' \"\$uri\""
cmp "$tmp/new" "$tmp/disk" || fail "Debian file plugin write differs"

# A v1 plugin from Debian (zero is one of the few still on API v1... or v2:
# either way it must serve zeroes of the right size).
if [ -f "$dir/nbdkit-pattern-plugin.so" ]; then
  out=$("$NBDCAGE" -U - "$dir/nbdkit-pattern-plugin.so" size=1M --run 'nbdinfo "$uri"')
  echo "$out" | grep -q 'export-size: 1048576' || fail "Debian pattern plugin size"
fi
echo PASS
