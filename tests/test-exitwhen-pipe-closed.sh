#!/bin/sh
# exitwhen exit-when-pipe-closed=FD (alias exit-when-fd-closed): FD is the
# read end of a pipe; nbdcage exits once every write end is closed.  Here
# nbdcage runs as a daemon and the writer is a sleep that we kill; the
# shell's own copy of the read end is closed at once, which must not count.
. "$(dirname "$0")/functions.sh"
requires nbdinfo

# The writer records its own pid: other tests run sleeps of their own.
sh -c 'echo $$ >"$1"; exec sleep 1000' writer "$tmp/writer" | {
  # The read end is our stdin: hand it to nbdcage as fd 5.
  "$NBDCAGE" -P "$tmp/pid" -U "$tmp/sock" --filter=exitwhen memory 1M exit-when-pipe-closed=5 exit-when-poll=1 5<&0 ||
    fail "daemon start"
} &
poll 30 test -s "$tmp/pid" || fail "nbdcage did not start"
pid=$(cat "$tmp/pid")
poll 30 test -s "$tmp/writer" || fail "no writer"
writer=$(cat "$tmp/writer")
cleanup_fn "kill $pid $writer 2>/dev/null"
nbdinfo --size "nbd+unix://?socket=$tmp/sock" >/dev/null || fail "does not serve"
# The plugin host must not hold the pipe (it is close-on-exec for children).
for h in $(cat /proc/"$pid"/task/*/children) $(host_pids "$pid"); do
  for fd in /proc/"$h"/fd/*; do
    [ "$(readlink "$fd")" != "$(readlink /proc/"$pid"/fd/5)" ] || fail "the plugin host inherited the pipe"
  done
done
kill -0 "$pid" || fail "exited while the pipe was open"
kill "$writer"
poll 10 sh -c "! kill -0 $pid 2>/dev/null" || fail "nbdcage still runs after the pipe closed"
[ ! -e "$tmp/sock" ] || fail "socket left behind"

# An FD that is not open counts as closed (nbdkit does the same): exit 0.
"$NBDCAGE" -f -U "$tmp/sock2" --filter=exitwhen memory 1M exit-when-fd-closed=99 2>"$tmp/err" ||
  fail "an unopened fd: exit status $?"
grep -q "exit-when-pipe-closed: 99 is not an open file descriptor" "$tmp/err" || fail "no message: $(cat "$tmp/err")"
echo PASS
