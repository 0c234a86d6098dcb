#!/bin/sh
# exitwhen after an event: clients that are connected keep working, a new
# connection is closed before the greeting, and nbdcage exits 0 once the
# last connected client leaves (not before).
. "$(dirname "$0")/functions.sh"
requires nbdsh
start_nbdcage --filter=exitwhen memory 1M exit-when-file-created="$tmp/stop"

/usr/bin/python3 - "$sock" "$pid" "$tmp/stop" <<'PY' || fail "graceful sequence"
import socket, sys, time
import nbd
from procstate import running
sock, pid, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]

a, b = nbd.NBD(), nbd.NBD()
a.connect_unix(sock)
b.connect_unix(sock)
a.pwrite(b"A" * 512, 0)
open(stop, "w").close()                       # the event

# A new client is refused before the greeting: it reads EOF.
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sock)
assert s.recv(8) == b"", "a new connection got a greeting after the event"
s.close()

# The connected ones keep working.
a.pwrite(b"B" * 512, 512)
assert b.pread(1024, 0) == b"A" * 512 + b"B" * 512
a.shutdown()
del a
time.sleep(0.3)  # a wrong exit would follow the close at once: give it the chance
assert running(pid), "nbdcage exited while a client was still connected"
assert b.pread(512, 0) == b"A" * 512
b.shutdown()
del b
PY
expect_exit 10 0
[ ! -e "$sock" ] || fail "socket left behind"
echo PASS
