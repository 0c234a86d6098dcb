#!/bin/sh
# exitlast: nbdcage exits 0 when the last client leaves, never before the
# first; a client that only asked NBD_OPT_INFO counts.
. "$(dirname "$0")/functions.sh"
requires nbdinfo nbdsh

start_nbdcage --filter=exitlast memory 1M
# Two clients at once: the server stays until both have gone.
/usr/bin/python3 - "$sock" "$pid" <<'PY' || fail "two clients"
import sys, time, nbd
from procstate import running
sock, pid = sys.argv[1], int(sys.argv[2])
a, b = nbd.NBD(), nbd.NBD()
a.connect_unix(sock)
b.connect_unix(sock)
b.pwrite(b"x" * 512, 0)
b.shutdown()
del b
time.sleep(0.3)  # a wrong exit would follow the close at once: give it the chance
assert running(pid), "exited while a client was connected"
assert a.pread(512, 0) == b"x" * 512
a.shutdown()
PY
expect_exit 10 0

# Before any client it does not exit (it would at once if it did).
start_nbdcage --filter=exitlast memory 1M
nbdinfo --size "$uri" >/dev/null || fail "not alive before its first client"
expect_exit 10 0

# A client that only asks NBD_OPT_INFO.
start_nbdcage --filter=exitlast memory 1M
/usr/bin/python3 - "$sock" <<'PY' || fail "info client"
import sys, nbd
h = nbd.NBD()
h.set_opt_mode(True)
h.connect_unix(sys.argv[1])
h.opt_info()
assert h.get_size() == 1048576
h.opt_abort()
PY
expect_exit 10 0
echo PASS
