#!/bin/sh
# The limit filter and the built-in connection cap: the client past the
# limit is refused before the greeting (the others keep their data), and a
# new one is admitted once one has left.  Without either, the same clients
# all get in (so the checks can fail).
. "$(dirname "$0")/functions.sh"
requires nbdsh

# clients SOCKET N: holds N clients connected, each with its own data, then
# tries one more while they are; prints "admitted" or "refused" for it,
# then "readmitted" if one more gets in after the first of them left.
clients() {
  /usr/bin/python3 - "$@" <<'PY'
import sys, time, nbd
sock, n = sys.argv[1], int(sys.argv[2])
held = []
for i in range(n):
    h = nbd.NBD()
    h.connect_unix(sock)
    h.pwrite(bytes([i + 1]) * 512, 512 * i)
    held.append(h)
extra = nbd.NBD()
try:
    extra.connect_unix(sock)
    print("admitted")
except nbd.Error:
    print("refused")
for i, h in enumerate(held):
    assert h.pread(512, 512 * i) == bytes([i + 1]) * 512, "a held client lost its data"
held[0].shutdown()
del held[0]
# The server sees the first one go a moment later.
deadline = time.time() + 10
while True:
    late = nbd.NBD()
    try:
        late.connect_unix(sock)
        break
    except nbd.Error:
        assert time.time() < deadline, "nobody is admitted after a client left"
        time.sleep(0.05)
assert late.pread(512, 0) == b"\x01" * 512, "the data of the client that left is gone"
print("readmitted")
PY
}

check() {  # check WHAT EXPECTED GOT
  [ "$2" = "$3" ] || fail "$1: expected '$2', got '$(echo $3)'"
}

start_nbdcage --filter=limit memory 1M 2> "$tmp/log1"
check "limit (default 1)" "refused readmitted" "$(clients "$sock" 1 | tr '\n' ' ' | sed 's/ $//')"
grep -q "limit: 1 client is connected already (limit=1)" "$tmp/log1" || fail "limit: the refusal is not logged"
kill "$pid"; wait "$pid" 2>/dev/null || true

start_nbdcage --filter=limit memory 1M limit=3 2> "$tmp/log3"
check "limit=3" "refused readmitted" "$(clients "$sock" 3 | tr '\n' ' ' | sed 's/ $//')"
grep -q "limit: 3 clients are connected already (limit=3)" "$tmp/log3" || fail "limit=3: the refusal is not logged"
kill "$pid"; wait "$pid" 2>/dev/null || true

# limit=0 and no filter: everyone gets in.
start_nbdcage --filter=limit memory 1M limit=0
check "limit=0" "admitted readmitted" "$(clients "$sock" 3 | tr '\n' ' ' | sed 's/ $//')"
kill "$pid"; wait "$pid" 2>/dev/null || true
start_nbdcage memory 1M
check "no limit filter" "admitted readmitted" "$(clients "$sock" 3 | tr '\n' ' ' | sed 's/ $//')"
kill "$pid"; wait "$pid" 2>/dev/null || true

# The built-in cap.
start_nbdcage --max-connections=2 memory 1M 2> "$tmp/logcap"
check "--max-connections=2" "refused readmitted" "$(clients "$sock" 2 | tr '\n' ' ' | sed 's/ $//')"
grep -q "2 clients are connected (--max-connections): refused 1 new connection" "$tmp/logcap" ||
  fail "--max-connections: the refusal is not logged"
kill "$pid"; wait "$pid" 2>/dev/null || true

# Bad values are startup errors.
for bad in limit=-1 limit=x limit=; do
  if "$NBDCAGE" -U - --filter=limit memory 1M "$bad" --run true 2> "$tmp/err"; then fail "$bad was accepted"; fi
  grep -q "limit must be a number" "$tmp/err" || fail "$bad: $(cat "$tmp/err")"
done
echo PASS
