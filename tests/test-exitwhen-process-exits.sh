#!/bin/sh
# exitwhen exit-when-process-exits=PID (alias exit-when-pid-exits): nbdcage
# exits 0 once the process is gone.  It is watched through a pidfd taken at
# startup, so a PID that does not exist is a startup error.
. "$(dirname "$0")/functions.sh"
requires nbdinfo

sleep 1000 & sleeper=$!
cleanup_fn "kill $sleeper 2>/dev/null"
start_nbdcage --filter=exitwhen memory 1M exit-when-process-exits=$sleeper exit-when-poll=1
nbdinfo --size "$uri" >/dev/null || fail "does not serve while the process lives"
kill -0 "$pid" || fail "exited while the process lived"
kill $sleeper; wait $sleeper 2>/dev/null || true
expect_exit 10 0

sleep 1000 & sleeper=$!
cleanup_fn "kill $sleeper 2>/dev/null"
start_nbdcage --filter=exitwhen memory 1M exit-when-pid-exits=$sleeper exit-when-poll=1
kill $sleeper; wait $sleeper 2>/dev/null || true
expect_exit 10 0

# A process that is already gone: its PID may be anyone's by now.
sh -c 'exit 0' & gone=$!; wait $gone
if "$NBDCAGE" -f -U "$tmp/bad" --filter=exitwhen memory 1M exit-when-process-exits=$gone 2>"$tmp/err"; then
  fail "a dead PID was accepted"
fi
grep -q "exit-when-process-exits: process $gone: No such process" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
if "$NBDCAGE" -f -U "$tmp/bad" --filter=exitwhen memory 1M exit-when-process-exits=abc 2>/dev/null; then
  fail "a non-number PID was accepted"
fi
echo PASS
