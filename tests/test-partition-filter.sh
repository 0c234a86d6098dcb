#!/bin/sh
# --filter=partition serves the bytes of one partition of a real image
# (made by sfdisk): MBR primaries, logical partitions in an extended one,
# and GPT; each compared with the same bytes cut out of the image by the
# offsets sfdisk reports.  Writes land inside the partition only.  A
# missing partition, a disk without a table and partition=0 are errors.
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdsh sfdisk
cd "$tmp"

# A 16 MiB image of distinct bytes everywhere, then a table written over it.
make_image() {  # $1: name, stdin: sfdisk script
  seq 1 3000000 | head -c 16M > "$1"
  sfdisk -q "$1" > /dev/null
}
check() {  # $1: image, $2: partition number
  start=$(sfdisk -J "$1" | /usr/bin/python3 -c "
import json, sys
t = json.load(sys.stdin)['partitiontable']
p = [p for p in t['partitions'] if p['node'].endswith(sys.argv[1])][0]
print(p['start'], p['size'])" "$2")
  set -- "$1" "$2" $start
  dd if="$1" of=want bs=512 skip="$3" count="$4" status=none
  "$NBDCAGE" -U - -r --filter=partition file "$1" partition="$2" --run 'nbdcopy "$uri" got' ||
    fail "$1: partition $2 was not served"
  cmp want got || fail "$1: partition $2: wrong bytes"
}

make_image mbr.img <<'T'
label: dos
2048,4096,83
6144,2048,83
8192,,5
10240,4096,83
16384,8192,83
T
for n in 1 2 5 6; do check mbr.img $n; done
echo "ok: MBR primary and logical partitions"

make_image gpt.img <<'T'
label: gpt
2048,4096
6144,8192
14336,
T
for n in 1 2 3; do check gpt.img $n; done
echo "ok: GPT partitions"

# A write lands in the partition and nowhere else.
cp gpt.img before.img
"$NBDCAGE" -U - --filter=partition file gpt.img partition=2 --run 'nbdsh -u "$uri" -c "h.pwrite(b\"P\" * 512, 0); h.flush()"'
dd if=gpt.img bs=512 skip=6144 count=1 status=none | cmp - "$(printf 'P%.0s' $(seq 512) > p512; echo p512)" ||
  fail "the write did not land at the partition's start"
dd if=gpt.img bs=512 count=6144 status=none | cmp - "$(dd if=before.img bs=512 count=6144 status=none of=head; echo head)" ||
  fail "the write changed what lies before the partition"
echo "ok: writes land inside the partition"

# Errors: no such partition, no table, partition=0 or missing.
for bad in "mbr.img partition=4" "mbr.img partition=7" "gpt.img partition=9"; do
  set -- $bad
  if "$NBDCAGE" -U - --filter=partition file "$1" "$2" --run 'nbdinfo --size "$uri"' 2> err; then
    fail "$bad was served"
  fi
  grep -q "partition" err || { cat err; fail "$bad: no reason given"; }
done
truncate -s 1M blank.img
if "$NBDCAGE" -U - --filter=partition file blank.img partition=1 --run 'nbdinfo --size "$uri"' 2> err; then
  fail "a disk without a table was served"
fi
grep -q "no MBR or GPT" err || { cat err; fail "no table: not said"; }
for bad in partition=0 ""; do
  if "$NBDCAGE" -U - --filter=partition file blank.img $bad --run true 2> err; then fail "'$bad' was taken"; fi
done
echo "ok: errors"
