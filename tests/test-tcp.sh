#!/bin/sh
# TCP: -p PORT on all addresses (IPv4 and IPv6), and -i to restrict.
. "$(dirname "$0")/functions.sh"
requires nbdinfo ss

for attempt in 1 2 3 4 5; do
  port=$(( 50000 + $(od -An -N2 -tu2 /dev/urandom) % 15000 ))
  ss -ltn | grep -q ":$port " || break
done
"$NBDCAGE" -f -p "$port" memory 1M &
pid=$!
cleanup_fn "kill $pid; wait $pid"
poll 30 sh -c "ss -ltn | grep -q ':$port '" || fail "not listening on $port"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 1048576 ] || fail "IPv4"
if ss -ltn | grep -q "\[::\]:$port "; then
  [ "$(nbdinfo --size "nbd://[::1]:$port")" = 1048576 ] || fail "IPv6"
fi
kill "$pid"; wait "$pid" || true

"$NBDCAGE" -f -i 127.0.0.1 -p "$port" memory 1M &
pid=$!
cleanup_fn "kill $pid; wait $pid"
poll 30 sh -c "ss -ltn | grep -q '127.0.0.1:$port '" || fail "-i not honoured"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 1048576 ] || fail "-i 127.0.0.1"
echo PASS
