#!/bin/sh
# nbdinfo --map after a write to a sparse memory disk: the written range is
# data, the rest holes that read as zero; REQ_ONE answers (qemu-img map)
# agree.
. "$(dirname "$0")/functions.sh"
requires nbdinfo qemu-io qemu-img
start_nbdcage memory 1M
qemu-io -f raw "$uri" -c 'write -P 0x33 256k 64k' >/dev/null
nbdinfo --map "$uri" > "$tmp/map"
cat "$tmp/map"
# Columns: offset length type description.
awk '$1 == 0 && $2 == 262144 && $3 == 3 {a=1}
     $1 == 262144 && $2 == 65536 && $3 == 0 {b=1}
     $1 == 327680 && $2 == 720896 && $3 == 3 {c=1}
     END {exit !(a && b && c)}' "$tmp/map" || fail "unexpected map"

qemu-img map -f raw --output=json "$uri" > "$tmp/qmap"
cat "$tmp/qmap"
grep -q '"start": 262144, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true' "$tmp/qmap" \
  || fail "qemu-img map disagrees"

# Zeroing the data makes it a hole again.
qemu-io -f raw "$uri" -c 'write -z 256k 64k' >/dev/null
nbdinfo --map "$uri" > "$tmp/map2"
[ "$(wc -l < "$tmp/map2")" -eq 1 ] || { cat "$tmp/map2"; fail "zeroed range still data"; }

# A plugin without extents (example1): the whole disk is reported as data.
"$NBDCAGE" -U - example1 --run 'nbdinfo --map "$uri"' > "$tmp/map3"
awk '$1 == 0 && $2 == 104857600 && $3 == 0 {ok=1} END {exit !(ok && NR == 1)}' "$tmp/map3" \
  || { cat "$tmp/map3"; fail "a plugin without extents is not all data"; }
echo PASS
