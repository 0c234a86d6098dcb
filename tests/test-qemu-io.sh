#!/bin/sh
# qemu-io against the memory plugin: unaligned writes, write zeroes,
# discard and flush; the bytes are checked, also from a second connection.
. "$(dirname "$0")/functions.sh"
requires qemu-io
start_nbdcage memory 1M

qemu-io -f raw "$uri" \
  -c 'write -P 0x55 513 10' \
  -c 'read -P 0x55 513 10' \
  -c 'read -P 0 503 10' \
  -c 'read -P 0 523 10' \
  -c 'write -P 0xaa 4k 64k' \
  -c 'write -z 8k 16k' \
  -c 'read -P 0xaa 4k 4k' \
  -c 'read -P 0 8k 16k' \
  -c 'read -P 0xaa 24k 44k' \
  -c 'write -P 0x11 128k 64k' \
  -c 'discard 128k 64k' \
  -c 'flush' > "$tmp/out1" 2>&1 || { cat "$tmp/out1"; fail "qemu-io session 1"; }
cat "$tmp/out1"
grep -qi 'pattern verification failed\|error' "$tmp/out1" && fail "qemu-io reported a mismatch"

# A second connection sees the same disk.
qemu-io -f raw -r "$uri" -c 'read -P 0x55 513 10' -c 'read -P 0 8k 16k' -c 'read -P 0xaa 24k 44k' \
  > "$tmp/out2" 2>&1 || { cat "$tmp/out2"; fail "qemu-io session 2"; }
grep -qi 'pattern verification failed\|error' "$tmp/out2" && { cat "$tmp/out2"; fail "data not shared"; }
echo PASS
