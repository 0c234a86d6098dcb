#!/bin/sh
# --filter=gzip and --filter=xz serve the decompressed bytes of real
# archives (made by gzip and xz; concatenated members and streams too),
# read-only, to several connections; a corrupt or truncated archive is a
# clear refusal, and nbdcage lives on.
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdsh gzip xz
cd "$tmp"
# 6 MiB: half random, half text, so both compress and do not.
{ head -c 3M /dev/urandom; seq 1 1000000 | head -c 3M; } > disk
gzip -c disk > disk.gz
xz -c -T1 disk > disk.xz
head -c 1M disk | gzip -c > two.gz; tail -c +1048577 disk | gzip -c >> two.gz
head -c 1M disk | xz -c > two.xz; tail -c +1048577 disk | xz -c >> two.xz

for f in gzip:disk.gz xz:disk.xz gzip:two.gz xz:two.xz; do
  filter=${f%%:*} file=${f#*:}
  "$NBDCAGE" -U - --filter=$filter file "$file" --run 'nbdcopy --connections=2 "$uri" out &&
    nbdsh -u "$uri" -c "assert h.is_read_only(); assert h.get_size() == 6 << 20"' 2> log ||
    { cat log; fail "$filter: $file was not served"; }
  cmp disk out || fail "$filter: $file: wrong bytes"
  grep -q "unpacked" log || fail "$filter: the unpacking was not said"
done
echo "ok: gzip and xz, single and concatenated"

head -c 100000 disk.gz > cut.gz
head -c 100000 disk.xz > cut.xz
head -c 100000 /dev/urandom > junk
for f in gzip:cut.gz xz:cut.xz gzip:junk xz:junk; do
  filter=${f%%:*} file=${f#*:}
  if "$NBDCAGE" -U - --filter=$filter file "$file" --run 'nbdinfo --size "$uri"' 2> log; then fail "$filter: $file was served"; fi
  grep -q "$filter: " log || { cat log; fail "$filter: $file: no clear error"; }
done
echo "ok: corrupt and truncated archives refused"
