#!/bin/sh
# Without -f nbdcage goes into the background once it serves: the command
# returns 0 only then, the pidfile names the daemon, relative plugin paths
# still work (also for a restarted plugin host), SIGTERM ends it and the
# socket goes with it.  A startup failure is still reported by the command.
. "$(dirname "$0")/functions.sh"
requires nbdinfo
truncate -s 1M "$tmp/disk.img"

cd "$tmp"
"$NBDCAGE" -P "$tmp/pid" -U "$tmp/sock" file disk.img || fail "daemon start failed"
pid=$(cat "$tmp/pid")
cleanup_fn "kill $pid 2>/dev/null"
[ -S "$tmp/sock" ] || fail "the socket was not there when the command returned"
kill -0 "$pid" || fail "the pidfile names no live process"
[ "$(readlink /proc/"$pid"/cwd)" = / ] || fail "the daemon kept its directory"
[ "$(nbdinfo --size "nbd+unix://?socket=$tmp/sock")" = 1048576 ] || fail "the daemon does not serve"

# A restarted host resolves the relative file name as the first one did.
for h in $(cat /proc/"$pid"/task/*/children); do kill -9 "$h"; done
[ "$(nbdinfo --size "nbd+unix://?socket=$tmp/sock")" = 1048576 ] || fail "no service after a host restart"

kill -TERM "$pid"
poll 10 sh -c "! kill -0 $pid 2>/dev/null" || fail "the daemon ignored SIGTERM"
[ ! -e "$tmp/sock" ] || fail "the socket was left behind"

# -f -P: the pidfile names the foreground process.
"$NBDCAGE" -f -P "$tmp/pid2" -U "$tmp/sock2" memory 1M &
fg=$!
cleanup_fn "kill $fg 2>/dev/null"
poll 30 test -s "$tmp/pid2" || fail "no pidfile with -f"
[ "$(cat "$tmp/pid2")" = "$fg" ] || fail "pidfile $(cat "$tmp/pid2") is not the server $fg"
kill "$fg"
wait "$fg" || true

# A startup failure: status 1 and the reason, from the command itself.
set +e
"$NBDCAGE" -P "$tmp/pid3" -U "$tmp/sock3" file "$tmp/missing" 2> "$tmp/err"
status=$?
set -e
[ $status -eq 1 ] || fail "a failing daemon start gave $status"
grep -q missing "$tmp/err" || fail "the failure was not explained"
[ ! -e "$tmp/pid3" ] || fail "a failed start wrote a pidfile"
echo PASS
