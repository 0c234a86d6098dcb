#!/bin/sh
# exitwhen exit-when-script=CMD: exit 88 is the event; 0 is nothing; other
# codes (1-87, and 89 and above, reserved) are logged and change nothing.
. "$(dirname "$0")/functions.sh"
requires nbdinfo

sleep 1000 & sleeper=$!
cleanup_fn "kill $sleeper 2>/dev/null"
start_nbdcage --filter=exitwhen memory 1M exit-when-script="kill -0 $sleeper || exit 88" exit-when-poll=1
nbdinfo --size "$uri" >/dev/null || fail "does not serve before the event"
kill $sleeper; wait $sleeper 2>/dev/null || true
expect_exit 10 0

# Codes that are not 0 or 88 are logged; the server keeps serving.  The
# script's stdout goes to the log (with -s the real stdout is the NBD stream).
for code in 1 89; do
  echo 0 >"$tmp/runs"
  sock=$tmp/sock$code
  "$NBDCAGE" -f -U "$sock" --filter=exitwhen memory 1M exit-when-poll=1 \
    exit-when-script="echo \$((\$(cat $tmp/runs) + 1)) >$tmp/runs; echo from-the-script; exit $code" 2>"$tmp/log$code" &
  pid=$!
  cleanup_fn "kill $pid 2>/dev/null"
  poll 30 test -S "$sock" || fail "did not start"
  poll 10 sh -c "[ \$(cat $tmp/runs) -ge 2 ]" || fail "the script did not run again"
  nbdinfo --size "nbd+unix://?socket=$sock" >/dev/null || fail "exit $code stopped the service"
  kill -0 "$pid" || fail "exit $code stopped nbdcage"
  grep -q "exit-when-script: the command failed with exit code $code" "$tmp/log$code" || fail "exit $code not logged"
  grep -q "from-the-script" "$tmp/log$code" || fail "the script's output is lost"
  kill "$pid"
  expect_exit 10 0
done
echo PASS
