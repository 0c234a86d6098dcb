#!/bin/sh
# A client stuck behind a slow request (then killed) does not stall the
# next client: each connection has its own loop and its own plugin handle.
. "$(dirname "$0")/functions.sh"
requires nbdsh
eval_plugin=${NBDKIT_PLUGINDIR:?}/nbdkit-eval-plugin.so
[ -f "$eval_plugin" ] || { echo "SKIP: Debian's eval plugin is not installed"; exit 77; }
# Reads at offset 0 take 30 s; all others are immediate.
start_nbdcage --allow-path="$tmp" "$eval_plugin" get_size='echo 1048576' thread_model='echo parallel' \
  pread="if [ \$4 -eq 0 ]; then touch $tmp/slow; sleep 30; fi; head -c \$3 /dev/zero"
nbdsh -u "$uri" -c 'h.pread(512, 0)' > /dev/null 2>&1 &
slow=$!
poll 30 test -e "$tmp/slow" || fail "the slow read never started"
kill -9 "$slow"
# The next client is served at once (well within the 30 s the first waits).
timeout 10 nbdsh -u "$uri" -c 'assert h.pread(512, 4096) == bytearray(512)' \
  || fail "the next client was stalled by the dead one"
kill -0 "$pid" || fail "nbdcage died"
# The dead client's read is still inside the plugin: a first SIGTERM waits
# for it, a second one ends nbdcage (and the plugin's sleep) at once.
while kill -0 "$pid" 2>/dev/null; do kill -TERM "$pid" 2>/dev/null; sleep 0.1; done
echo PASS
