#!/bin/sh
# A client that dies with large reads in flight leaves nbdcage serving:
# the replies it cannot send are dropped, the slots come back.
. "$(dirname "$0")/functions.sh"
requires nbdsh
start_nbdcage memory 64M
for i in 1 2 3; do
  nbdsh -u "$uri" -c '
import os
bufs = [nbd.Buffer(8 << 20) for i in range(8)]
for i in range(8):
    h.aio_pread(bufs[i], i * (8 << 20))
os._exit(0)' || true
done
kill -0 "$pid" || fail "nbdcage died with its client"
[ "$(nbdsh -u "$uri" -c 'print(h.get_size())')" = 67108864 ] || fail "no service after dead clients"
echo PASS
