#!/bin/sh
# --filter=readahead: sequential reads reach the plugin as fewer, larger
# reads (windows of 64 KiB and up); the data is the same as without it,
# for real copy tools; a write is never hidden by data read ahead; the
# export no longer offers multi-conn.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdcopy qemu-img
eval_plugin=${NBDKIT_PLUGINDIR:?}/nbdkit-eval-plugin.so
[ -f "$eval_plugin" ] || { echo "SKIP: Debian's eval plugin is not installed"; exit 77; }

# What the plugin sees: one line "COUNT OFFSET" per read.
read_log() {
  start_nbdcage "$@" --allow-path="$tmp" "$eval_plugin" get_size='echo 4194304' \
    pread="echo \"\$3 \$4\" >> $tmp/preads; head -c \$3 /dev/zero"
  : > "$tmp/preads"
  nbdsh -u "$uri" -c '
for off in range(0, 1 << 20, 4096):
    assert h.pread(4096, off) == bytearray(4096)
'
  kill "$pid"; expect_exit 10 0
}
read_log
[ "$(wc -l < "$tmp/preads")" -eq 256 ] || fail "without the filter: $(wc -l < "$tmp/preads") reads, expected 256"
read_log --filter=readahead
n=$(wc -l < "$tmp/preads")
[ "$n" -lt 32 ] || fail "with readahead the plugin still saw $n reads for 256 sequential ones"
grep -q '^131072 ' "$tmp/preads" || fail "the window did not grow: $(sort -u "$tmp/preads" | head)"

# Real copies, byte for byte.
head -c 24M /dev/urandom > "$tmp/disk.img"
"$NBDCAGE" -U - -r --filter=readahead file "$tmp/disk.img" --run "nbdcopy \"\$uri\" $tmp/copy1.img" ||
  fail "nbdcopy failed"
cmp "$tmp/disk.img" "$tmp/copy1.img" || fail "nbdcopy copy differs"
"$NBDCAGE" -U - -r --filter=readahead file "$tmp/disk.img" --run "qemu-img convert -f raw \"\$nbd\" -O raw $tmp/copy2.img" ||
  fail "qemu-img failed"
cmp "$tmp/disk.img" "$tmp/copy2.img" || fail "qemu-img copy differs"
# The copy job of nbdcage's design notes, with Debian's curl plugin (a
# file:// URL: no network here).
curl_plugin=$NBDKIT_PLUGINDIR/nbdkit-curl-plugin.so
if [ -f "$curl_plugin" ]; then
  "$NBDCAGE" -U - --filter=readahead "$curl_plugin" url="file://$tmp/disk.img" \
    --run "qemu-img convert -f raw \"\$nbd\" -O raw $tmp/copy3.img" || fail "curl copy failed"
  cmp "$tmp/disk.img" "$tmp/copy3.img" || fail "curl copy differs"
fi

# The window is per connection, so multi-conn consistency is not promised.
start_nbdcage memory 1M
nbdinfo --can multi-conn "$uri" || fail "memory should offer multi-conn"
kill "$pid"; expect_exit 10 0
# Read ahead, write into what was read ahead, read it back.
start_nbdcage --filter=readahead memory 1M
if nbdinfo --can multi-conn "$uri"; then fail "readahead kept multi-conn"; fi
nbdsh -u "$uri" -c '
for off in range(0, 65536, 4096):
    h.pread(4096, off)
h.pwrite(b"\xab" * 4096, 32768)
assert h.pread(4096, 32768) == b"\xab" * 4096
assert h.pread(4096, 36864) == bytearray(4096)
' || fail "a write was hidden by the read-ahead window"
echo PASS
