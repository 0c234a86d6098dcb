#!/bin/sh
# nbdcage's plugins that make their data up: zero, full, ones, random and
# sparse-random.  Bytes are checked against references computed here
# (random's from its documented generator, written again in Python), and
# each plugin's refusals are checked by errno: full's ENOSPC, random's EIO
# for a write that would change it.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdcopy nbdinfo
cd "$tmp"

[ "$("$NBDCAGE" -U - zero --run 'nbdinfo --size "$uri"')" = 0 ] || fail "zero: not 0 bytes"
echo "ok: zero"

"$NBDCAGE" -U - full 1M --run 'nbdsh -u "$uri" -c "
import errno
assert h.pread(65536, 4096) == bytes(65536)
for what, op in ((\"write\", lambda: h.pwrite(b\"x\" * 512, 0)), (\"zero\", lambda: h.zero(512, 0)),
                 (\"trim\", lambda: h.trim(512, 0))):
    try:
        op()
        raise SystemExit(what + \" succeeded on a full disk\")
    except nbd.Error as e:
        assert e.errno == \"ENOSPC\", (what, e.errno)
h.flush()"' || fail "full"
echo "ok: full (reads zeroes; write, zero and trim fail with ENOSPC)"

"$NBDCAGE" -U - ones 1M --run 'nbdsh -u "$uri" -c "
assert h.pread(4096, 12345) == b\"\xff\" * 4096
h.pwrite(b\"discarded\", 0)
assert h.pread(9, 0) == b\"\xff\" * 9"' || fail "ones"
"$NBDCAGE" -U - ones 1M byte=0x2a --run 'nbdsh -u "$uri" -c "assert h.pread(100, 0) == b\"*\" * 100"' ||
  fail "ones byte=0x2a"
echo "ok: ones (and byte=)"

# random: the generator, independently: byte o = byte o%8 of
# splitmix64(seed ^ splitmix64(o / 8)), little-endian.
/usr/bin/python3 - > want.img <<'PY'
import sys
M = (1 << 64) - 1
def mix(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
seed = 12345
sys.stdout.buffer.write(b"".join(mix(seed ^ mix(w)).to_bytes(8, "little") for w in range(65536 // 8)))
PY
"$NBDCAGE" -U - random 65536 seed=12345 --run 'nbdcopy "$uri" got.img' || fail "random"
cmp -s want.img got.img || fail "random: not the documented bytes"
"$NBDCAGE" -U - random 65536 seed=12346 --run 'nbdcopy "$uri" other.img'
! cmp -s got.img other.img || fail "random: another seed gives the same bytes"
"$NBDCAGE" -U - random 65536 seed=12345 --run 'nbdcopy want.img "$uri"' || fail "random: writing what is there failed"
"$NBDCAGE" -U - random 65536 seed=12345 --run 'nbdsh -u "$uri" -c "
b = bytearray(h.pread(512, 1024))
b[100] ^= 1
try:
    h.pwrite(bytes(b), 1024)
    raise SystemExit(\"a changing write succeeded\")
except nbd.Error as e:
    assert e.errno == \"EIO\", e.errno"' || fail "random: a changing write"
echo "ok: random (documented bytes, seeds, writes of what is there only)"

# sparse-random: holes where extents say, data of the kind asked, the same
# for the same seed, about percent= of it data.
for content in false true; do
  "$NBDCAGE" -U - sparse-random 64M seed=7 percent=25 runlength=1M random-content=$content \
    --run 'nbdinfo --map --json "$uri" > map.json; nbdcopy "$uri" sr.img' || fail "sparse-random"
  /usr/bin/python3 - "$content" <<'PY' || fail "sparse-random random-content=$content"
import json, sys
data = open("sr.img", "rb").read()
random_content = sys.argv[1] == "true"
extents = json.load(open("map.json"))
held = 0
for e in extents:
    chunk = data[e["offset"]:e["offset"] + e["length"]]
    if e["type"] & 1:
        assert chunk == bytes(len(chunk)), "a hole holds data at %d" % e["offset"]
    else:
        held += len(chunk)
        for b in range(0, len(chunk), 4096):
            block = chunk[b:b + 4096]
            if random_content:
                assert len(set(block)) > 200, "a random block of few values at %d" % (e["offset"] + b)
            else:
                assert block[0] != 0 and block == bytes([block[0]]) * len(block), "not one byte repeated"
share = held / len(data)
assert 0.10 < share < 0.45, "%.0f%% data for percent=25" % (share * 100)
print("sparse-random random-content=%s: %.0f%% data" % (sys.argv[1], share * 100))
PY
done
"$NBDCAGE" -U - sparse-random 64M seed=7 percent=25 runlength=1M --run 'nbdcopy "$uri" again.img'
"$NBDCAGE" -U - sparse-random 64M seed=7 percent=25 runlength=1M random-content=false --run 'nbdcopy "$uri" sr.img'
cmp -s sr.img again.img || fail "sparse-random: the same seed gave other bytes"
"$NBDCAGE" -U - sparse-random 8M percent=0 --run 'nbdinfo --map "$uri"' | grep -q "hole,zero" || fail "percent=0"
if "$NBDCAGE" -U - sparse-random 8M percent=101 --run true 2>err; then fail "percent=101 accepted"; fi
grep -q "between 0 and 100" err || fail "percent=101: message"
echo "ok: sparse-random"
echo PASS
