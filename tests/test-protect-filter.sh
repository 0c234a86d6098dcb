#!/bin/sh
# --filter=protect: writes that would change protected bytes fail with
# EPERM and change nothing; writes that leave them as they are, and writes
# elsewhere, go through; zeroes over zeroes are allowed; trims over
# protected bytes are refused; ~START-END protects the complement; ranges
# larger than the filter's compare buffer are compared in full.
. "$(dirname "$0")/functions.sh"
requires nbdsh
cd "$tmp"
head -c 1M /dev/urandom > disk
"$NBDCAGE" -U - --filter=protect file disk protect=0-0x1bd protect=0x40000-0x7ffff --run 'nbdsh -u "$uri" -c "
import errno
def refused(f, *a):
    try:
        f(*a)
    except nbd.Error as e:
        assert e.errno == \"EPERM\", e.errno
        return True
    return False
orig = open(\"disk\", \"rb\").read()
head = h.pread(512, 0)
assert refused(h.pwrite, b\"X\" * 446, 0), \"a change to the boot code went through\"
h.pwrite(head[:446], 0)                       # the same bytes: allowed
h.pwrite(b\"T\" * 66, 446)                    # the partition table: not protected
assert refused(h.pwrite, b\"Y\" * 100, 400), \"a straddling write went through\"
assert h.pread(446, 0) == orig[:446]
assert h.pread(20, 400)[:20] == orig[400:420], \"a refused write changed something\"
# 256 KiB protected: compared in pieces; one byte differing at the end.
big = bytearray(orig[0x40000:0x80000])
h.pwrite(bytes(big), 0x40000)
big[-1] ^= 1
assert refused(h.pwrite, bytes(big), 0x40000), \"a change in the last byte of a long range went through\"
assert refused(h.zero, 4096, 0x40000), \"a zero over data went through\"
assert refused(h.trim, 4096, 0x40000), \"a trim over protected bytes went through\"
h.trim(4096, 0x10000)                          # elsewhere: fine
"' || fail "protect=START-END"
echo "ok: protected ranges"

truncate -s 1M zeros
"$NBDCAGE" -U - --filter=protect file zeros protect=~4096-8191 --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"w\" * 4096, 4096)
h.zero(4096, 0)                                # zeroes over zeroes: unchanged
for off in (0, 8192, 1048576 - 512):
    try:
        h.pwrite(b\"w\" * 512, off)
        raise SystemExit(\"a write outside the complement went through at %d\" % off)
    except nbd.Error as e:
        assert e.errno == \"EPERM\"
"' || fail "protect=~START-END"
echo "ok: complemented range"

for bad in protect=5 protect=10-2 protect=x-y; do
  if "$NBDCAGE" -U - --filter=protect memory 1M $bad --run true 2> err; then fail "$bad was taken"; fi
  grep -q "protect" err || { cat err; fail "$bad: no clear error"; }
done
echo "ok: bad parameters"
