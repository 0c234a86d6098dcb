#!/bin/sh
# SIGKILL to the plugin host: the connection using it ends with an error
# (no hang, no wrong data), nbdcage stays up, and the next connection is
# served by a freshly started host.
. "$(dirname "$0")/functions.sh"
requires nbdsh
start_nbdcage --on-plugin-crash=restart memory 1M

cat > "$tmp/victim.py" <<PY
import nbd, os, signal, sys, time
h = nbd.NBD()
h.connect_uri("$uri")
h.pwrite(b"x" * 4096, 0)
host = int(sys.argv[1])
os.kill(host, signal.SIGKILL)
try:
    for i in range(1000):
        h.pread(4096, 0)
        time.sleep(0.01)
    print("FAIL: requests still succeed after the host died")
    sys.exit(1)
except nbd.Error as e:
    print("expected error:", e)
PY
host=$(host_pids "$pid")
[ -n "$host" ] || fail "no host"
timeout 60 /usr/bin/python3 "$tmp/victim.py" "$host" || fail "client did not see an error"
kill -0 "$pid" || fail "nbdcage died with its plugin host"

# A new connection gets a new host, with a fresh (empty) disk.
out=$(timeout 60 nbdsh -u "$uri" -c 'print(h.get_size()); print(h.pread(4, 0))')
echo "$out"
echo "$out" | grep -q '^1048576$' || fail "new connection not served"
echo "$out" | grep -q "b'\\\\x00\\\\x00\\\\x00\\\\x00'" || fail "unexpected data from the new host"
new=$(host_pids "$pid")
[ -n "$new" ] && [ "$new" != "$host" ] || fail "no fresh host ($host -> $new)"
echo PASS
