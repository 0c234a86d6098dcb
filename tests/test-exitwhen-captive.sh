#!/bin/sh
# Under --run, a stop asked from inside (an exitwhen event, or the plugin's
# nbdkit_shutdown) ends the server but not the command, as in nbdkit: the
# command runs on, and its exit status is nbdcage's.
. "$(dirname "$0")/functions.sh"
requires nbdinfo nbdsh

set +e
"$NBDCAGE" -U - --filter=exitwhen memory 1M exit-when-file-created="$tmp/stop" exit-when-poll=1 --run '
  nbdinfo --size "$uri" >/dev/null || exit 10
  touch '"$tmp/stop"'
  i=0
  while [ -S "$unixsocket" ]; do            # the server goes; we stay
    i=$((i + 1)); [ $i -lt 400 ] || exit 11; sleep 0.05
  done
  echo still-running >'"$tmp/after"'
  exit 7' 2>"$tmp/log"
status=$?
set -e
[ "$status" -eq 7 ] || { cat "$tmp/log"; fail "exit status $status, expected the command's 7"; }
grep -q still-running "$tmp/after" || fail "the command did not run on after the server stopped"
grep -q "waiting for the --run command to end" "$tmp/log" || fail "no message"

set +e
"$NBDCAGE" -U - "${NBDCAGE_BUILD:?}/tests/plugins/shutdown.so" --run '
  nbdsh -u "$uri" -c "h.pwrite(b\"x\" * 512, 0)"
  i=0
  while [ -S "$unixsocket" ]; do
    i=$((i + 1)); [ $i -lt 400 ] || exit 11; sleep 0.05
  done
  exit 0' 2>"$tmp/log2"
status=$?
set -e
[ "$status" -eq 0 ] || { cat "$tmp/log2"; fail "plugin shutdown under --run: exit status $status"; }
echo PASS
