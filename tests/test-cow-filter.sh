#!/bin/sh
# --filter=cow: writes never reach the plugin.  A random mix of writes,
# zeroes and trims at unaligned offsets and sizes (partial blocks merged
# with the plugin's data) is checked byte for byte against a model, over
# two connections that share the overlay; the file underneath is unchanged;
# the overlay is gone when nbdcage exits; a read-only plugin is made
# writable; bad parameters are refused.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdcopy
cd "$tmp"
head -c 3M /dev/urandom > disk
# The last block is short: the disk is not a multiple of 64K.
head -c 1000 /dev/urandom >> disk
before=$(md5sum < disk)

start_nbdcage --filter=cow file disk cow-block-size=64K 2> log
nbdsh -u "$uri" -c '
import random
rnd = random.Random(9)
model = bytearray(open("disk", "rb").read())
size = len(model)
assert h.get_size() == size and not h.is_read_only() and h.can_trim() and h.can_zero()
other = nbd.NBD()
other.connect_uri(h.get_uri())
for i in range(300):
    op = rnd.choice(["write", "write", "zero", "trim", "read"])
    off = rnd.randrange(size)
    n = rnd.randrange(1, min(200000, size - off) + 1)
    conn = rnd.choice([h, other])
    if op == "write":
        data = rnd.randbytes(n)
        conn.pwrite(data, off)
        model[off:off + n] = data
    elif op in ("zero", "trim"):
        (conn.zero if op == "zero" else conn.trim)(n, off)
        model[off:off + n] = bytes(n)
    else:
        assert conn.pread(n, off) == model[off:off + n], ("read", off, n)
# Everything, from both connections, in 1 MiB reads.
for conn in (h, other):
    got = b"".join(conn.pread(min(1 << 20, size - o), o) for o in range(0, size, 1 << 20))
    assert got == model, "the overlay does not hold what was written"
h.flush()
' || { cat log; fail "the overlay's contents are wrong"; }
[ "$(md5sum < disk)" = "$before" ] || fail "cow wrote to the plugin's file"
kill "$pid"; expect_exit 10 0
echo "ok: writes, zeroes and trims land in the overlay only, shared by connections"

# A new nbdcage: a new, empty overlay.
"$NBDCAGE" -U - --filter=cow file disk --run 'nbdcopy "$uri" copy' || fail "copy through cow"
cmp disk copy || fail "a new overlay was not empty"
echo "ok: the overlay goes with nbdcage"

# A read-only plugin (-r on the file plugin's own, a read-only export)
# becomes writable, and the plugin is opened read-only.
"$NBDCAGE" -U - --filter=cow pattern 1M --run 'nbdsh -u "$uri" -c "
assert not h.is_read_only()
h.pwrite(b\"z\" * 100, 12345)
assert h.pread(100, 12345) == b\"z\" * 100
import struct
assert struct.unpack(\">Q\", h.pread(8, 8))[0] == 8
"' || fail "cow over the read-only pattern plugin"
echo "ok: a read-only plugin made writable"

for bad in cow-block-size=1000 cow-block-size=2K cow-block-size=8M cow-on-read=true cow-on-cache=yes; do
  if "$NBDCAGE" -U - --filter=cow memory 1M $bad --run true 2> err; then fail "$bad was taken"; fi
  grep -q "${bad%%=*}" err || { cat err; fail "$bad: no clear error"; }
done
echo "ok: bad parameters"
