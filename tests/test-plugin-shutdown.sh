#!/bin/sh
# A plugin's nbdkit_shutdown() stops nbdcage in order, as SIGTERM would:
# reads keep it serving, the write that makes the plugin ask ends it (exit 0).
. "$(dirname "$0")/functions.sh"
requires nbdsh
start_nbdcage "${NBDCAGE_BUILD:?}/tests/plugins/shutdown.so"
for i in 1 2 3; do nbdsh -u "$uri" -c 'h.pread(512, 0)'; done
kill -0 "$pid" || fail "reads stopped the server"
nbdsh -u "$uri" -c 'h.pwrite(b"x" * 512, 0)' || true
poll 10 sh -c "! kill -0 $pid 2>/dev/null" || fail "nbdkit_shutdown() did not stop nbdcage"
set +e; wait "$pid"; status=$?; set -e
[ "$status" -eq 0 ] || fail "exit status $status"
[ ! -e "$sock" ] || fail "socket left behind"
echo PASS
