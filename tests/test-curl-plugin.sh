#!/bin/sh
# nbdcage's curl plugin against a local web server that answers byte
# ranges (tests/http-range-server.py, on 127.0.0.1): the seed example
# verbatim but for the program name, bytes checked; nbdcopy over several
# connections with connections reused; transient server failures (503s,
# dropped connections) retried until the copy completes, bytes right; a
# server that ignores ranges and a missing file refused with a reason;
# file:// served without the network, http:// with it (declared by the
# plugin, no --allow-network needed).
. "$(dirname "$0")/functions.sh"
requires qemu-img nbdcopy nbdinfo
cd "$tmp"
mkdir www
head -c 8388608 /dev/urandom > www/disk.img
head -c 33554432 /dev/urandom > www/big.img
server=$NBDCAGE_SOURCE/tests/http-range-server.py

web() {  # web NAME ARGS...: starts a server, sets $port; its counts in NAME.json
  name=$1; shift
  rm -f "$name.port"
  /usr/bin/python3 "$server" --dir www --port-file "$name.port" --stats "$name.json" "$@" &
  cleanup_fn "kill $!"
  poll 20 test -s "$name.port" || fail "the test's web server did not start"
  port=$(cat "$name.port")
}
stat() { /usr/bin/python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1.json" "$2"; }

web plain
# The seed example, verbatim but for the program name.
"$NBDCAGE" -U - --filter=readahead curl "http://127.0.0.1:$port/disk.img" --run 'qemu-img convert $nbd disk.img' ||
  fail "the seed example"
cmp -s www/disk.img disk.img || fail "the seed example copied wrong bytes"
[ "$(stat plain ranged)" -gt 0 ] || fail "no ranged GETs were made"
echo "ok: the seed example ($(stat plain ranged) ranged GETs, $(stat plain connections) connections)"

# nbdcopy: 4 connections, many requests each: connections are kept.
web reuse
"$NBDCAGE" -U - curl url="http://127.0.0.1:$port/big.img" --run 'nbdcopy --request-size=262144 "$uri" big.img' ||
  fail "nbdcopy"
cmp -s www/big.img big.img || fail "nbdcopy copied wrong bytes"
gets=$(stat reuse ranged) conns=$(stat reuse connections)
echo "nbdcopy of 32 MiB: $gets ranged GETs over $conns connections"
[ "$gets" -ge 128 ] || fail "only $gets GETs for 128 requests of 256 KiB"
[ "$conns" -le $((gets / 4)) ] || fail "connections are not reused: $conns for $gets GETs"
echo "ok: nbdcopy, connections reused"

# Transient failures: retried, and the copy is right.
web flaky --fail-first 4 --drop-every 7
"$NBDCAGE" -U - curl "http://127.0.0.1:$port/disk.img" retry-delay=10ms --run 'nbdcopy "$uri" flaky.img' 2>err ||
  { cat err; fail "a copy through a flaky server failed"; }
cmp -s www/disk.img flaky.img || fail "the flaky server's copy has wrong bytes"
[ "$(stat flaky failed)" -eq 4 ] && [ "$(stat flaky dropped)" -gt 0 ] || fail "the server did not fail as asked"
echo "ok: $(stat flaky failed) 503s and $(stat flaky dropped) dropped connections retried"
# ... but not for ever.
web down --fail-first 1000000
if "$NBDCAGE" -U - curl "http://127.0.0.1:$port/disk.img" retries=2 retry-delay=1ms --run 'nbdinfo --size "$uri"' \
    >/dev/null 2>err; then fail "a server that always fails was served"; fi
grep -q "HTTP status 503" err || { cat err; fail "no reason given for the failing server"; }
echo "ok: retries=2 gives up with the reason"

# Refused with a reason: ranges ignored, a missing file.
web noranges --no-ranges
if "$NBDCAGE" -U - curl "http://127.0.0.1:$port/disk.img" --run 'nbdinfo --size "$uri"' >/dev/null 2>err; then
  fail "a server that ignores ranges was served"
fi
grep -q "the server ignored the byte range" err || { cat err; fail "no reason for the range-less server"; }
if "$NBDCAGE" -U - curl "http://127.0.0.1:$port/nosuch.img" --run 'nbdinfo --size "$uri"' >/dev/null 2>err; then
  fail "a missing file was served"
fi
grep -q "HTTP status 404" err || { cat err; fail "no reason for the missing file"; }
echo "ok: a server ignoring ranges and a missing file refused"

# file://: no network; http://: the network, declared by the plugin.
"$NBDCAGE" -U - curl "file://$tmp/www/disk.img" --run 'nbdcopy "$uri" local.img' && cmp -s www/disk.img local.img ||
  fail "file://"
"$NBDCAGE" --dump-config curl "file://$tmp/www/disk.img" | grep -qx "sandbox_network=none" || fail "file:// got the network"
"$NBDCAGE" --dump-config curl "http://127.0.0.1:$port/disk.img" | grep -qx "sandbox_network=allowed" ||
  fail "http:// has no network"
"$NBDCAGE" --dump-config curl url="http://127.0.0.1:$port/disk.img?a=b" | grep -qx "sandbox_network=allowed" ||
  fail "url=http:// has no network"
echo "ok: file:// without the network, http:// with it"

if "$NBDCAGE" -U - curl --run true 2>err; then fail "no url accepted"; fi
grep -q "the url parameter is required" err || fail "no url: message"
if "$NBDCAGE" -U - curl "http://127.0.0.1:$port/disk.img" header-script=x --run true 2>err; then fail "header-script accepted"; fi
grep -q "header-script= is not supported" err || fail "header-script: message"
echo PASS
