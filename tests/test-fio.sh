#!/bin/sh
# fio's nbd engine: random read/write at queue depth 32 with crc32c
# verification; every block written is read back and checked.
. "$(dirname "$0")/functions.sh"
requires fio
fio --version >/dev/null
start_nbdcage memory 64M
fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=32 \
    --size=16M --verify=crc32c --verify_fatal=1 --do_verify=1 --output="$tmp/fio.out" \
  || { cat "$tmp/fio.out"; fail "fio failed"; }
grep -q 'err= 0' "$tmp/fio.out" || { cat "$tmp/fio.out"; fail "fio reported errors"; }
echo PASS
