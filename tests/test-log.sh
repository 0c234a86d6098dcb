#!/bin/sh
# --log: messages (nbdcage's and the plugin host's, relayed) go to stderr
# by default, nowhere with --log=null, and to syslog with --log=syslog or
# once daemonized; -v debug stays on stderr.
. "$(dirname "$0")/functions.sh"

# Default: the plugin's error reaches stderr, tagged with its name.
set +e
"$NBDCAGE" -U - file "$tmp/missing" --run true 2> "$tmp/err"
set -e
grep -q "^nbdcage: file: error: .*$tmp/missing" "$tmp/err" || { cat "$tmp/err"; fail "host error not on stderr"; }

# --log=null: the same failure is silent (the exit status still says it).
set +e
"$NBDCAGE" --log=null -U - file "$tmp/missing" --run true 2> "$tmp/err"
status=$?
set -e
[ $status -eq 1 ] || fail "--log=null changed the exit status ($status)"
[ ! -s "$tmp/err" ] || { cat "$tmp/err"; fail "--log=null still wrote to stderr"; }

# -v debug goes to stderr even with --log=null.
"$NBDCAGE" -v --log=null -U - memory 1M --run true 2> "$tmp/debug"
grep -q 'debug:' "$tmp/debug" || fail "-v debug lost with --log=null"

# syslog: only where this test can own /dev/log (no syslog daemon running).
if [ -e /dev/log ] || [ "$(id -u)" != 0 ]; then
  echo "PASS (syslog not checked: /dev/log belongs to someone else)"
  exit 0
fi
/usr/bin/python3 - "$tmp/syslog" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
s.settimeout(20)
with open(sys.argv[1], "wb") as out:
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            out.write(s.recv(65536) + b"\n"); out.flush()
        except socket.timeout:
            break
os.unlink("/dev/log")
PY
listener=$!
cleanup_fn "kill $listener 2>/dev/null; rm -f /dev/log"
poll 10 test -S /dev/log || fail "could not listen on /dev/log"
set +e
"$NBDCAGE" --log=syslog -U - file "$tmp/missing" --run true 2> "$tmp/err"
set -e
poll 10 grep -q "file: error: .*missing" "$tmp/syslog" || { cat "$tmp/syslog"; fail "nothing reached syslog"; }
[ ! -s "$tmp/err" ] || fail "--log=syslog also wrote to stderr"
kill $listener 2>/dev/null || true
echo PASS
