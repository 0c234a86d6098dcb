#!/bin/sh
# Running out of threads costs one client, never the server: with a
# process limit (RLIMIT_NPROC, which binds any user but root) a flood of
# idle connections is refused one by one with a log line, and once they
# go, a new client is served.  nbdcage runs as an unprivileged user here,
# so this also covers the sandbox's way in without root (a user namespace).
. "$(dirname "$0")/functions.sh"
requires setpriv prlimit nbdinfo
# A uid of its own (no account needs it): not nobody, which every plugin
# host that root starts runs as, and whose tasks the other tests' hosts
# would add to the count.
user=46123
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to become another user"; exit 77; }
# That user must reach the binaries and plugins.
setpriv --reuid=$user --regid=$user --clear-groups test -x "$NBDCAGE" ||
  { echo "SKIP: uid $user cannot run $NBDCAGE"; exit 77; }
# Tasks (threads) the user already runs count against the limit too.
others=$(ps -L -u $user --no-headers | wc -l)
limit=$((others + 40))

chmod 755 "$tmp"
mkdir "$tmp/run" && chown $user "$tmp/run"
sock=$tmp/run/sock
setpriv --reuid=$user --regid=$user --clear-groups \
  prlimit --nproc="$limit" "$NBDCAGE" -f -U "$sock" memory 1M 2> "$tmp/log" &
pid=$!
cleanup_fn "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
poll 30 test -S "$sock" || { cat "$tmp/log"; fail "nbdcage did not start as uid $user"; }
nbdinfo --size "nbd+unix://?socket=$sock" | grep -qx 1048576 || fail "not served before the flood"

# 60 idle connections: more than the limit allows threads for.
/usr/bin/python3 - "$sock" <<'PY'
import socket, sys, time
conns = []
for i in range(60):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    conns.append(s)
time.sleep(1)
for s in conns:
    s.close()
PY
kill -0 "$pid" 2>/dev/null || { cat "$tmp/log"; fail "nbdcage died when it ran out of threads"; }
grep -q "no thread for it" "$tmp/log" || { cat "$tmp/log"; fail "the refused connections were not logged"; }
# Once the flood has gone, clients are served again.
poll 20 sh -c "nbdinfo --size 'nbd+unix://?socket=$sock' 2>/dev/null | grep -qx 1048576" ||
  { cat "$tmp/log"; fail "no client served after the flood"; }

# Real clients until threads run out in the frontend or in the plugin host
# (its workers start on demand): a refused client gets an error, never a
# dead server, and the clients already in keep reading their data.
/usr/bin/python3 - "$sock" <<'PY' || { cat "$tmp/log"; fail "clients beyond the limit"; }
import nbd, sys
clients, refused = [], 0
for i in range(40):
    h = nbd.NBD()
    try:
        h.connect_unix(sys.argv[1])
        h.pwrite(bytes([i + 1]) * 512, i * 4096)
        clients.append((i, h))
    except nbd.Error as e:
        refused += 1
print("served", len(clients), "refused", refused)
assert clients, "no client was served"
assert refused, "the limit was never reached: the test proves nothing"
for i, h in clients:
    assert h.pread(512, i * 4096) == bytes([i + 1]) * 512, "client %d read wrong data" % i
PY
kill -0 "$pid" 2>/dev/null || { cat "$tmp/log"; fail "nbdcage died when its host ran out of threads"; }
grep -q "died\|killed" "$tmp/log" && { cat "$tmp/log"; fail "the plugin host died when it ran out of threads"; }
poll 20 sh -c "nbdinfo --size 'nbd+unix://?socket=$sock' 2>/dev/null | grep -qx 1048576" ||
  { cat "$tmp/log"; fail "no client served once the others left"; }
echo PASS
