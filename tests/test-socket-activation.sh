#!/bin/sh
# systemd socket activation: nbdcage serves the sockets it is handed in
# LISTEN_FDS, under systemd-socket-activate and under libnbd's own
# activation (nbdinfo -- [ nbdcage ... ]); the flags that would make other
# sockets are refused by name.
. "$(dirname "$0")/functions.sh"
requires systemd-socket-activate nbdinfo

systemd-socket-activate -l "$tmp/sock" "$NBDCAGE" memory 1M > "$tmp/log" 2>&1 &
sa=$!
cleanup_fn "kill $sa 2>/dev/null; pkill -f '$tmp/sock' 2>/dev/null"
poll 30 test -S "$tmp/sock" || fail "systemd-socket-activate did not listen"
[ "$(nbdinfo --size "nbd+unix://?socket=$tmp/sock")" = 1048576 ] || { cat "$tmp/log"; fail "not served"; }
# A second client on the same activated socket.
[ "$(nbdinfo --size "nbd+unix://?socket=$tmp/sock")" = 1048576 ] || fail "second client not served"

# libnbd starts the server itself with LISTEN_PID/LISTEN_FDS.
[ "$(nbdinfo --size -- [ "$NBDCAGE" memory 2M ])" = 2097152 ] || fail "nbdinfo -- [ nbdcage ]"

# Flags that make sockets of their own are refused, naming the flag.
for flag in "-p 10809" "-i 127.0.0.1" "-U $tmp/x" "-s" "--run true"; do
  set +e
  sh -c "exec env LISTEN_PID=\$\$ LISTEN_FDS=1 \"$NBDCAGE\" $flag memory 1M" 2> "$tmp/err" < /dev/null
  status=$?
  set -e
  [ $status -eq 1 ] || fail "$flag with socket activation: exit $status"
  opt=${flag%% *}
  grep -q -- "$opt cannot be used with socket activation" "$tmp/err" || { cat "$tmp/err"; fail "message for $flag"; }
done
echo PASS
