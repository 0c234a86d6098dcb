#!/bin/sh
# --timeout (nbdkit 1.42's): a client that does not finish negotiating is
# dropped once the server has waited that long for it, with a log line;
# clients that negotiate are served; --timeout=0 waits for ever.
. "$(dirname "$0")/functions.sh"
requires nbdinfo

# silent_client SOCKET WAIT: connects, reads the greeting, says nothing;
# prints "dropped" if the server closes within WAIT seconds, else "open".
cat > "$tmp/silent.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(float(sys.argv[2]))
greeting = b""
while len(greeting) < 18:
    greeting += s.recv(18 - len(greeting))
try:
    print("dropped" if s.recv(1) == b"" else "talked")
except socket.timeout:
    print("open")
PY

start_nbdcage --timeout=1 memory 1M 2> "$tmp/log"
[ "$(/usr/bin/python3 "$tmp/silent.py" "$sock" 8)" = dropped ] || fail "a silent client was not dropped"
grep -q "did not finish the handshake within 1 s" "$tmp/log" || { cat "$tmp/log"; fail "no log line"; }
[ "$(nbdinfo --size "$uri")" = 1048576 ] || fail "a real client was not served"
kill "$pid"; expect_exit 10 0

# The default is 10 s: a silent client is still connected after 2 s.
start_nbdcage memory 1M
[ "$(/usr/bin/python3 "$tmp/silent.py" "$sock" 2)" = open ] || fail "the default timeout is shorter than 10 s"
kill "$pid"; expect_exit 20 0

# 0: never.
start_nbdcage --timeout=0 memory 1M
[ "$(/usr/bin/python3 "$tmp/silent.py" "$sock" 2)" = open ] || fail "--timeout=0 dropped a client"
kill "$pid"; expect_exit 10 0
echo PASS
