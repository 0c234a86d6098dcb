#!/bin/sh
# SIGINT while a read sleeps in the plugin (nbdkit_nanosleep, as nbdkit's
# delay filter sleeps): the sleep ends early, the read gets an error reply
# rather than a dropped connection, and nbdcage exits 0 within 5 s.
. "$(dirname "$0")/functions.sh"
requires nbdsh
start_nbdcage -v "${NBDCAGE_BUILD:?}/tests/plugins/sleepy.so" 2>"$tmp/log"
nbdsh -u "$uri" -c '
try:
    h.pread(512, 0)
    print("answered")
except nbd.Error as e:
    print("failed:", e.string)
' >"$tmp/client" 2>&1 &
client=$!
poll 30 grep -q 'sleeping in a read' "$tmp/log" || fail "the slow read never started"
kill -INT "$pid"
expect_exit 5 0
wait "$client" || true
grep -q '^failed:' "$tmp/client" || fail "the read was not answered with an error: $(cat "$tmp/client")"
grep -q 'aborting sleep: the server is shutting down' "$tmp/log" || fail "the plugin's sleep did not end early"
echo PASS
