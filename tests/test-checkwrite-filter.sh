#!/bin/sh
# --filter=checkwrite: copying an export onto itself (nbdcopy, qemu-img
# convert -n) succeeds and writes nothing; copying different data fails
# with EIO; zeroes and trims are checked as zeroes; the plugin is opened
# read-only (a read-only plugin works).
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdsh qemu-img
cd "$tmp"
{ head -c 1M /dev/urandom; head -c 1M /dev/zero; head -c 1M /dev/urandom; } > disk
before=$(md5sum < disk)
"$NBDCAGE" -U - --filter=checkwrite file disk --run 'nbdcopy "$uri" "$uri" && qemu-img convert -n -f raw -O raw "$nbd" "$nbd"' ||
  fail "copying the export onto itself failed"
[ "$(md5sum < disk)" = "$before" ] || fail "checkwrite wrote the plugin"
head -c 3M /dev/urandom > other
if "$NBDCAGE" -U - --filter=checkwrite file disk --run 'nbdcopy other "$uri"' 2>/dev/null; then
  fail "a copy of other data passed the check"
fi
[ "$(md5sum < disk)" = "$before" ] || fail "checkwrite wrote the plugin"
"$NBDCAGE" -U - --filter=checkwrite file disk --run 'nbdsh -u "$uri" -c "
h.zero(65536, 1 << 20)                # zeroes over zeroes
h.trim(65536, 1 << 20)
h.flush()
for f in (lambda: h.zero(4096, 0), lambda: h.trim(4096, 0), lambda: h.pwrite(b\"x\", 5)):
    try:
        f()
        raise SystemExit(\"a change passed the check\")
    except nbd.Error as e:
        assert e.errno == \"EIO\", e.errno
"' || fail "zero/trim checks"
"$NBDCAGE" -U - --filter=checkwrite pattern 1M --run 'nbdcopy "$uri" "$uri"' || fail "over the read-only pattern plugin"
echo PASS
