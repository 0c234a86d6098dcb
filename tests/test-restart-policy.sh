#!/bin/sh
# How a shared plugin host is replaced (frontend/host/supervisor.cpp):
# - hosts that die before serving anyone come back ever more slowly
#   (200 ms, doubled per death in a row, at most 5 s), and the log says so;
# - a new host must get ready (load, config, get_ready, hello) within the
#   request deadline, or it is killed and the client told, never left
#   waiting; once the plugin can start again, clients are served.
. "$(dirname "$0")/functions.sh"
requires nbdinfo
hostile=${NBDCAGE_BUILD:?}/tests/plugins/hostile.so

# A plugin that crashes at every open: the pauses between hosts grow.
start_nbdcage "$hostile" when=open attack=crash 2>"$tmp/log"
for i in 1 2 3; do
  if nbdinfo --size "nbd+unix:///attack?socket=$sock" >/dev/null 2>&1; then fail "a crashing open succeeded"; fi
done
kill -0 "$pid" || fail "nbdcage died in a crash loop"
delays=$(sed -n 's/.*died before serving anyone; the next starts in \([0-9]*\) ms/\1/p' "$tmp/log" | tr '\n' ' ')
[ -n "$delays" ] || { cat "$tmp/log"; fail "the back-off was never said"; }
/usr/bin/python3 -c '
import sys
d = [int(x) for x in sys.argv[1].split()]
assert len(d) >= 2 and all(b >= a for a, b in zip(d, d[1:])) and d[-1] > d[0] and d[-1] <= 5000, d
' "$delays" || fail "the back-off did not grow: $delays"
kill "$pid"; expect_exit 10 0

# A restarted host that hangs in get_ready.
mkdir "$tmp/switch"
start_nbdcage --request-timeout=2 --allow-path="$tmp/switch" "$hostile" when=ready attack=hang-if \
  target="$tmp/switch/hang" 2>"$tmp/log"
nbdinfo --size "$uri" >/dev/null || fail "not served at first"
touch "$tmp/switch/hang"
kill -9 $(host_pids "$pid")
poll 10 sh -c "grep -q 'was killed by signal 9' '$tmp/log'" || fail "the host's death was not seen"
if timeout 20 nbdinfo --size "$uri" >/dev/null 2>&1; then fail "served by a host that never got ready"; fi
grep -q "did not get ready within 2 s" "$tmp/log" || { cat "$tmp/log"; fail "the hung start was not given up on"; }
rm "$tmp/switch/hang"
poll 20 sh -c "nbdinfo --size '$uri' >/dev/null 2>&1" || { cat "$tmp/log"; fail "not served once the plugin could start"; }
kill "$pid"; expect_exit 10 0
echo PASS
