#!/bin/sh
# --filter=evil corrupts reads only: stuck-bits gives the same corruption on
# every read (and with the same evil-seed in another run), at about the
# asked density, stuck high and low; evil-stuck-probability=0 shows none;
# cosmic-rays differs from read to read; writes reach the plugin intact.
. "$(dirname "$0")/functions.sh"
requires nbdsh
cd "$tmp"
truncate -s 4M zeros
count='
def ones(b):
    return sum(x.bit_count() for x in b)
'
"$NBDCAGE" -U - --filter=evil file zeros evil-probability=1e-4 evil-seed=7 --run 'nbdsh -u "$uri" -c "
'"$count"'
a = h.pread(4 << 20, 0)
b = h.pread(1 << 20, 1 << 20)
assert a[1 << 20:2 << 20] == b, \"stuck bits moved between reads\"
n = ones(a)
# 32 Mbit at 1e-4: about 3355 stuck, half of them high.
assert 1200 < n < 2200, n
open(\"first\", \"wb\").write(a)
"' || fail "stuck-bits"
"$NBDCAGE" -U - --filter=evil file zeros evil-probability=1e-4 evil-seed=7 --run 'nbdsh -u "$uri" -c "
assert h.pread(4 << 20, 0) == open(\"first\", \"rb\").read(), \"the same seed corrupted differently\"
"' || fail "evil-seed"
"$NBDCAGE" -U - --filter=evil file zeros evil-probability=1e-4 evil-stuck-probability=0 --run 'nbdsh -u "$uri" -c "
assert h.pread(4 << 20, 0) == bytes(4 << 20)
"' || fail "evil-stuck-probability=0"
echo "ok: stuck-bits"

"$NBDCAGE" -U - --filter=evil file zeros evil=cosmic-rays evil-probability=1e-4 --run 'nbdsh -u "$uri" -c "
'"$count"'
a = h.pread(4 << 20, 0)
b = h.pread(4 << 20, 0)
assert a != b, \"cosmic rays struck the same bits twice\"
assert 2500 < ones(a) < 4300, ones(a)      # every one is a flipped zero
h.pwrite(b\"\\xff\" * 4096, 0)
"' || fail "cosmic-rays"
head -c 4096 zeros | tr -d '\377' | wc -c | grep -qx 0 || fail "the write did not reach the plugin intact"
echo "ok: cosmic-rays; writes untouched"

for bad in evil=stuck-wires evil=gamma evil-probability=2 evil-seed=x; do
  if "$NBDCAGE" -U - --filter=evil memory 1M $bad --run true 2> err; then fail "$bad was taken"; fi
  grep -q "evil" err || { cat err; fail "$bad: no clear error"; }
done
echo "ok: bad parameters"
