#!/bin/sh
# --isolate=connection: each client gets a plugin host of its own, so a
# plugin serving one client never sees another's data (here: the memory
# plugin's disk is per client), and a client's host goes when it leaves.
# Without it, one host serves everyone (the same disk): shown first, so
# the check can fail.
. "$(dirname "$0")/functions.sh"
requires nbdsh

cat > "$tmp/two.py" <<'PY'
import nbd, os, sys
uri = os.environ["uri"]
a, b = nbd.NBD(), nbd.NBD()
a.connect_uri(uri)
b.connect_uri(uri)
a.pwrite(b"secret" * 100, 0)
a.flush()
seen = b.pread(600, 0)
print("shared" if seen == b"secret" * 100 else "isolated" if seen == bytearray(600) else "garbage")
PY

start_nbdcage memory 1M
[ "$(uri=$uri /usr/bin/python3 "$tmp/two.py" x)" = shared ] || fail "without isolation the clients did not share the disk"
kill "$pid"; expect_exit 10 0

start_nbdcage --isolate=connection memory 1M 2> "$tmp/log"
[ "$(uri=$uri /usr/bin/python3 "$tmp/two.py" x)" = isolated ] || { cat "$tmp/log"; fail "a client saw another client's data"; }

# While two clients are connected there are three hosts (the shared one,
# which lists exports, and one each); once they leave, one.
cat > "$tmp/hold.py" <<'PY'
import nbd, os, sys, time
hs = []
for i in range(2):
    h = nbd.NBD()
    h.connect_uri(os.environ["uri"])
    hs.append(h)
open(sys.argv[1], "w").close()
time.sleep(3)
PY
uri=$uri /usr/bin/python3 "$tmp/hold.py" "$tmp/held" &
holder=$!
poll 10 test -e "$tmp/held" || fail "the clients did not connect"
n=$(host_pids "$pid" | wc -l)
[ "$n" -eq 3 ] || fail "expected 3 plugin hosts with 2 isolated clients, found $n"
first=$(host_pids "$pid" | head -1)
wait "$holder"
for i in $(seq 100); do [ "$(host_pids "$pid" | wc -l)" -eq 1 ] && break; sleep 0.1; done
n=$(host_pids "$pid" | wc -l)
[ "$n" -eq 1 ] || fail "the clients' hosts outlived them ($n hosts)"
if grep -q "was killed\|exited with" "$tmp/log"; then cat "$tmp/log"; fail "a client's host ending was reported as a crash"; fi

# A crash of a client's own host costs that client only: the memory
# plugin's default (refuse clients once its data is lost) is about a
# shared disk; here the next client gets its own host and disk.
rm -f "$tmp/held"
uri=$uri /usr/bin/python3 "$tmp/hold.py" "$tmp/held" &
holder=$!
poll 10 test -e "$tmp/held" || fail "the clients did not connect"
for h in $(host_pids "$pid"); do [ "$h" = "$first" ] || kill -9 "$h"; done
nbdsh -u "$uri" -c 'h.pwrite(b"x" * 512, 0); assert h.pread(512, 0) == b"x" * 512' ||
  { cat "$tmp/log"; fail "a new client was not served after another client's host crashed"; }
wait "$holder" || true
kill -0 "$pid" || fail "nbdcage died"
kill "$pid"; expect_exit 10 0
if "$NBDCAGE" -U - --isolate=sometimes memory 1M --run true 2> "$tmp/err"; then fail "a bad --isolate was accepted"; fi
grep -q "must be connection or none" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
echo PASS
