#!/bin/sh
# Signals: SIGTERM with an idle client still connected ends nbdcage
# promptly (it does not wait on the idle client); a request in flight is
# answered before nbdcage exits; with --run, SIGTERM and SIGINT go to the
# command and nbdcage exits with the command's status.
. "$(dirname "$0")/functions.sh"
requires nbdsh
eval_plugin=${NBDKIT_PLUGINDIR:?}/nbdkit-eval-plugin.so

# 1. An idle client does not hold nbdcage up.
start_nbdcage memory 1M
nbdsh -u "$uri" -c "import time; h.get_size(); open('$tmp/connected', 'w').close(); time.sleep(60)" &
client=$!
cleanup_fn "kill $client 2>/dev/null"
poll 30 test -e "$tmp/connected" || fail "client never connected"
kill -TERM "$pid"
poll 10 sh -c "! kill -0 $pid 2>/dev/null" || fail "nbdcage waited on an idle client"
set +e; wait "$pid"; status=$?; set -e
[ "$status" -eq 0 ] || fail "SIGTERM exit status $status"
[ ! -e "$sock" ] || fail "socket left behind"

# A server whose reads run the given shell snippet first (eval plugin).
start_slow_server() {
  rm -f "$tmp/started"
  start_nbdcage --allow-path="$tmp" "$eval_plugin" get_size='echo 1048576' thread_model='echo parallel' pread="$1"
}

# 2. A request in flight is answered before the exit.
if [ -f "$eval_plugin" ]; then
  start_slow_server "touch $tmp/started; sleep 1; head -c \$3 /dev/zero"
  nbdsh -u "$uri" -c 'assert h.pread(512, 0) == bytearray(512); print("answered")' > "$tmp/answer" 2>&1 &
  reader=$!
  poll 30 test -e "$tmp/started" || fail "the read never reached the plugin"
  kill -TERM "$pid"
  wait "$reader" || { cat "$tmp/answer"; fail "the in-flight read was not answered"; }
  grep -q answered "$tmp/answer" || fail "no answer"
  set +e; wait "$pid"; status=$?; set -e
  [ "$status" -eq 0 ] || fail "exit status $status after an in-flight request"
fi

# 4. A second signal does not wait for a slow request in flight.
if [ -f "$eval_plugin" ]; then
  # The script's pid is its host's PID namespace's: find it by its command.
  start_slow_server "touch $tmp/started; exec sleep 30.5"
  nbdsh -u "$uri" -c 'h.pread(512, 0)' > /dev/null 2>&1 &
  poll 30 test -e "$tmp/started" || fail "the read never reached the plugin"
  kill -TERM "$pid"
  sleep 0.2
  kill -0 "$pid" || fail "the first signal did not wait for the request in flight"
  kill -TERM "$pid"
  poll 5 sh -c "! kill -0 $pid 2>/dev/null" || fail "a second signal did not end nbdcage at once"
  poll 5 sh -c "! pgrep -fx 'sleep 30.5' >/dev/null" || fail "the plugin's own process outlived nbdcage"
fi

# 3. With --run the signal goes to the command, whose status nbdcage takes.
"$NBDCAGE" -U - memory 1M --run "trap 'exit 7' TERM; echo \$\$ > $tmp/cmd; while :; do sleep 0.05; done" &
pid3=$!
poll 30 test -s "$tmp/cmd" || fail "command did not start"
kill -TERM "$pid3"
set +e; wait "$pid3"; status=$?; set -e
[ "$status" -eq 7 ] || fail "SIGTERM during --run gave $status, expected the command's 7"
echo PASS
