#!/bin/sh
# nbdcage's split plugin: files concatenated (an empty one too), bytes
# checked against cat; a write across a boundary lands in both files;
# extents show each file's holes; a read-only file makes the disk
# read-only; a directory is refused.
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdsh nbdinfo
cd "$tmp"
head -c 1048576 /dev/urandom > a
: > empty
head -c 524288 /dev/urandom > b
truncate -s 1M sparse
printf x | dd of=sparse bs=1 seek=600000 conv=notrunc status=none
"$NBDCAGE" -U - split a empty b sparse --run 'nbdcopy "$uri" got; nbdinfo --map --json "$uri" > map.json' || fail "split"
cat a empty b sparse | cmp -s - got || fail "not the files' bytes in order"
/usr/bin/python3 - <<'PY' || fail "extents"
import json
m = json.load(open("map.json"))
holes = [(e["offset"], e["length"]) for e in m if e["type"] & 1]
assert any(o >= 1572864 and o + l <= 1572864 + 600000 for o, l in holes), holes
assert all(o >= 1572864 for o, l in holes), "a hole in a or b: %s" % holes
PY
echo "ok: concatenation, extents"
"$NBDCAGE" -U - split a b --run 'nbdsh -u "$uri" -c "h.pwrite(b\"Z\" * 10, 1048570); h.flush()"' || fail "write"
[ "$(tail -c 6 a)" = ZZZZZZ ] && [ "$(head -c 4 b)" = ZZZZ ] || fail "a write across the boundary"
echo "ok: a write across the boundary"
chmod 0444 b
# (The plugin host is not root: a mode it may not write is read-only to it.)
"$NBDCAGE" -U - split a b --run 'nbdinfo --json "$uri"' > info.json || fail "a read-only file"
grep -q '"is_read_only": true' info.json || fail "a read-only file did not make the disk read-only"
"$NBDCAGE" -U - split a b --run 'nbdcopy "$uri" got2' && cat a b | cmp -s - got2 || fail "read-only: wrong bytes"
echo "ok: a read-only file makes the disk read-only"
if "$NBDCAGE" -U - split a "$tmp" --run 'nbdinfo --size "$uri"' 2>err; then fail "a directory was accepted"; fi
grep -q "not a regular file" err || { cat err; fail "directory: message"; }
echo PASS
