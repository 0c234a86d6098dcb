#!/bin/sh
# --filter=time-limit: a connection ends at its limit, idle or busy; before
# it requests are served; a new connection gets a new limit; nbdcage lives
# on.  (Times are lower/upper bounds with wide margins, not measurements.)
. "$(dirname "$0")/functions.sh"
requires nbdsh
start_nbdcage --filter=time-limit memory 1M time-limit=1s 2> "$tmp/log"
nbdsh -u "$uri" -c '
import time
t = time.time()
h.pwrite(b"t" * 512, 0)
assert h.pread(512, 0) == b"t" * 512
time.sleep(2)                     # idle past the limit: the server closes
try:
    h.pread(512, 0)
    raise SystemExit("a request was answered after the time limit")
except nbd.Error:
    pass
' || { cat "$tmp/log"; fail "the idle connection was not ended"; }
grep -q "time-limit: the connection reached its limit of 1 s" "$tmp/log" || { cat "$tmp/log"; fail "not logged"; }
# A busy client: reads in a loop until the server ends it, within a few s.
nbdsh -u "$uri" -c '
import time
t = time.time()
try:
    while time.time() - t < 10:
        h.pread(4096, 0)
    raise SystemExit("a busy connection outlived its limit")
except nbd.Error:
    assert 0.9 <= time.time() - t < 5, time.time() - t
' || { cat "$tmp/log"; fail "the busy connection was not ended"; }
kill -0 "$pid" || fail "nbdcage died"
kill "$pid"; expect_exit 10 0
if "$NBDCAGE" -U - --filter=time-limit memory 1M time-limit=soon --run true 2> "$tmp/err"; then fail "time-limit=soon was taken"; fi
grep -q "time-limit" "$tmp/err" || fail "no clear error for time-limit=soon"
echo PASS
