#!/bin/sh
# The small filters, each shown doing its work (so each check fails if the
# filter did nothing): noextents, nocache, nozero, offset, delay (lower
# bounds in time only), error (rates of 0, 1 and 50%, a per-kind rule, and
# error-file= switching it on and off), fua (what reaches the plugin, seen
# by strace), noparallel, count and readonly; bad parameters are startup
# errors.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdinfo
run() { "$NBDCAGE" -U - "$@"; }

# noextents: the sparse memory disk looks all data.
run memory 1M --run 'nbdinfo --map "$uri"' | grep -q "hole" || fail "the baseline has no hole"
run --filter=noextents memory 1M --run 'nbdinfo --map "$uri"' | grep -q "hole" && fail "noextents showed a hole"
echo "ok: noextents"

# nocache: CACHE not advertised, or advertised and done as nothing (the
# file plugin advertises it: fadvise WILLNEED).
truncate -s 1M "$tmp/disk"
run file "$tmp/disk" --run 'nbdsh -u "$uri" -c "assert h.can_cache()"' || fail "the file plugin's cache is not advertised"
run --filter=nocache file "$tmp/disk" --run 'nbdsh -u "$uri" -c "assert not h.can_cache()"' || fail "cachemode=none"
run --filter=nocache memory 1M cachemode=nop --run 'nbdsh -u "$uri" -c "assert h.can_cache(); h.cache(4096, 0)"' ||
  fail "cachemode=nop"
echo "ok: nocache (none, nop)"

# nozero: WRITE_ZEROES not advertised; fastzeromode=slow fails fast zeroes.
run --filter=nozero memory 1M --run 'nbdsh -u "$uri" -c "assert not h.can_zero()"' || fail "zeromode=none"
run --filter=nozero memory 1M zeromode=plugin fastzeromode=slow --run 'nbdsh -u "$uri" -c "
assert h.can_zero() and h.can_fast_zero()
h.zero(4096, 0)
try:
    h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO)
    raise SystemExit(\"a fast zero succeeded with fastzeromode=slow\")
except nbd.Error as e:
    assert e.errno == \"ENOTSUP\", e.errno
"' || fail "fastzeromode=slow"
run --filter=nozero memory 1M zeromode=plugin fastzeromode=none --run 'nbdsh -u "$uri" -c "assert not h.can_fast_zero()"' ||
  fail "fastzeromode=none"
echo "ok: nozero (zeromode=none, fastzeromode=slow and none)"

# offset: the pattern plugin's words hold their own offsets.
run --filter=offset pattern 1M offset=65536 range=8192 --run 'nbdsh -u "$uri" -c "
import struct
assert h.get_size() == 8192
assert struct.unpack(\">Q\", h.pread(8, 0))[0] == 65536
assert struct.unpack(\">Q\", h.pread(8, 8184))[0] == 65536 + 8184
"' || fail "offset="
run --filter=offset memory 1M offset=4096 --run 'nbdsh -u "$uri" -c "h.pwrite(b\"o\" * 512, 0); h.flush()"' ||
  fail "offset: a write and flush (a flush has no range to move)"
run --filter=offset memory 1M offset=1M --run 'nbdinfo --size "$uri"' | grep -qx 0 || fail "offset to the end"
if run --filter=offset memory 1M offset=2M --run 'nbdinfo --size "$uri"' 2>"$tmp/err"; then fail "an offset past the end"; fi
grep -q "beyond the end of the plugin" "$tmp/err" || { cat "$tmp/err"; fail "offset past the end: message"; }
echo "ok: offset (offset=, range=, past the end refused)"

# delay: two reads of 300 ms each take at least 600 ms; writes are not delayed by rdelay.
start=$(date +%s.%N)
run --filter=delay memory 1M rdelay=300ms --run 'nbdsh -u "$uri" -c "h.pread(512, 0); h.pread(512, 512)"' || fail "delay"
t=$(awk "BEGIN { print $(date +%s.%N) - $start }")
awk "BEGIN { exit !($t >= 0.6) }" || fail "two delayed reads took $t s"
echo "ok: delay (two reads of rdelay=300ms took $t s)"

# error: every read fails at rate 1; none at rate 0; error-file= switches it.
run --filter=error memory 1M error-rate=1 --run 'nbdsh -u "$uri" -c "
try:
    h.pread(512, 0)
    raise SystemExit(\"a read succeeded at error-rate=1\")
except nbd.Error as e:
    assert e.errno == \"EIO\", e.errno
"' 2>/dev/null || fail "error-rate=1"
run --filter=error memory 1M error-rate=0 --run 'nbdsh -u "$uri" -c "h.pread(512, 0)"' || fail "error-rate=0"
run --filter=error memory 1M error-pwrite=ENOSPC error-pwrite-rate=100% --run 'nbdsh -u "$uri" -c "
h.pread(512, 0)
try:
    h.pwrite(b\"x\" * 512, 0)
    raise SystemExit(\"a write succeeded\")
except nbd.Error as e:
    assert e.errno == \"ENOSPC\", e.errno
"' 2>/dev/null || fail "error-pwrite"
run --filter=error memory 1M error-rate=1 error-file="$tmp/now" --run 'nbdsh -u "$uri" -c "
import os
h.pread(512, 0)
open(\"'"$tmp"'/now\", \"w\").close()
try:
    h.pread(512, 0)
    raise SystemExit(\"error-file= did not switch errors on\")
except nbd.Error:
    pass
os.unlink(\"'"$tmp"'/now\")
h.pread(512, 0)
"' 2>/dev/null || fail "error-file="
# About half of 400 reads fail at error-rate=50% (a wide margin: binomial).
run --filter=error memory 1M error-rate=50% --run 'nbdsh -u "$uri" -c "
failed = 0
for i in range(400):
    try:
        h.pread(512, 0)
    except nbd.Error:
        failed += 1
assert 120 < failed < 280, failed
"' 2>/dev/null || fail "error-rate=50%"
echo "ok: error (rates 1, 0 and 50%, error-pwrite=, error-file=)"

# fua: how FUA shows and what reaches the plugin (strace sees the
# fdatasyncs the file plugin makes for FUA and flush).
truncate -s 1M "$tmp/disk"
run --filter=fua file "$tmp/disk" --run 'nbdsh -u "$uri" -c "assert not h.can_fua()"' || fail "fuamode=none"
run --filter=fua file "$tmp/disk" fuamode=native --run 'nbdsh -u "$uri" -c "assert h.can_fua()"' || fail "fuamode=native"
syncs() {  # syncs ARGS...: fdatasyncs for one FUA write and one flush
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -e trace=fdatasync -o "$tmp/trace" \
    "$NBDCAGE" -U - --filter=fua file "$tmp/disk" "$@" --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"x\" * 512, 0, nbd.CMD_FLAG_FUA if h.can_fua() else 0)
h.flush()"' || fail "fua $*"
  grep -c fdatasync "$tmp/trace"
}
if command -v strace >/dev/null; then
  [ "$(syncs fuamode=pass)" = 2 ] || fail "fuamode=pass: not one sync for the FUA write and one for the flush"
  [ "$(syncs fuamode=emulate)" = 2 ] || fail "fuamode=emulate: the FUA write was not followed by a flush"
  [ "$(syncs fuamode=discard)" = 0 ] || fail "fuamode=discard still synced"
  [ "$(syncs fuamode=force)" = 1 ] || fail "fuamode=force: not one sync (the write), with the flush a no-op"
  echo "ok: fua (none, native, pass, emulate, discard, force)"
fi

# noparallel: the requests of a connection reach the plugin one at a time
# (the eval plugin's reads record overlaps), where without it they overlap.
overlaps() {
  rm -f "$tmp/busy" "$tmp/overlap"
  "$NBDCAGE" -U - "$@" eval get_size='echo 1M' thread_model='echo parallel' \
    pread="if [ -e $tmp/busy ]; then touch $tmp/overlap; fi; touch $tmp/busy; sleep 0.2; rm -f $tmp/busy; head -c \$3 /dev/zero" \
    --allow-path="$tmp" --run 'nbdsh -u "$uri" -c "
cs = [h.aio_pread(nbd.Buffer(512), i * 512) for i in range(4)]
while h.aio_in_flight() > 0:
    h.poll(-1)"' || fail "noparallel $*"
  [ -e "$tmp/overlap" ] && echo yes || echo no
}
# (The host starts its workers as requests come, so the first few may run
# one after another by chance: the baseline gets three tries.)
baseline=no
for try in 1 2 3; do [ "$(overlaps)" = yes ] && { baseline=yes; break; }; done
[ "$baseline" = yes ] || fail "without noparallel the reads did not overlap: the check proves nothing"
[ "$(overlaps --filter=noparallel)" = no ] || fail "noparallel let two reads overlap"
echo "ok: noparallel"

# count: what was read, written, zeroed and trimmed, said at exit.
run --filter=count memory 1M --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"x\" * 4096, 0); h.pread(8192, 0); h.zero(1024, 0); h.trim(512, 4096)"' 2>"$tmp/err" || fail "count"
grep -q "count: 8192 bytes read, 4096 written, 1024 zeroed, 512 trimmed" "$tmp/err" || { cat "$tmp/err"; fail "count's totals"; }
echo "ok: count"

# readonly: always, or while a file exists.
run --filter=readonly memory 1M --run 'nbdsh -u "$uri" -c "assert h.is_read_only()"' || fail "readonly"
run --filter=readonly memory 1M readonly-file="$tmp/ro" --run 'nbdsh -u "$uri" -c "
import os
h.pwrite(b\"a\" * 512, 0)
open(\"'"$tmp"'/ro\", \"w\").close()
try:
    h.pwrite(b\"b\" * 512, 0)
    raise SystemExit(\"a write went through while the file existed\")
except nbd.Error as e:
    assert e.errno == \"EPERM\", e.errno
os.unlink(\"'"$tmp"'/ro\")
h.pwrite(b\"c\" * 512, 0)
assert h.pread(512, 0) == b\"c\" * 512
"' || fail "readonly-file="
echo "ok: readonly (always, and switched by readonly-file=)"

# rotational, multi-conn, nofilter, swab.
run --filter=rotational memory 1M --run 'nbdsh -u "$uri" -c "assert h.is_rotational()"' || fail "rotational"
run --filter=rotational memory 1M rotational=false --run 'nbdsh -u "$uri" -c "assert not h.is_rotational()"' ||
  fail "rotational=false"
run memory 1M --run 'nbdsh -u "$uri" -c "assert h.can_multi_conn()"' || fail "memory's multi-conn"
run --filter=multi-conn memory 1M multi-conn-mode=disable --run 'nbdsh -u "$uri" -c "assert not h.can_multi_conn()"' ||
  fail "multi-conn-mode=disable"
run --filter=multi-conn pattern 1M multi-conn-mode=enable --run 'nbdsh -u "$uri" -c "assert h.can_multi_conn()"' ||
  fail "multi-conn-mode=enable"
run --filter=nofilter pattern 1M --run 'nbdinfo --size "$uri"' | grep -qx 1048576 || fail "nofilter"
run --filter=swab pattern 1M swab-bits=64 --run 'nbdsh -u "$uri" -c "
import struct
assert struct.unpack(\"<Q\", h.pread(8, 4096))[0] == 4096, \"the pattern words are not byte-swapped\"
"' || fail "swab-bits=64"
truncate -s 1M "$tmp/swab"
run --filter=swab file "$tmp/swab" --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"abcd\" * 128, 0)
assert h.pread(512, 0) == b\"abcd\" * 128, \"a swabbed write did not read back\"
"' || fail "swab writes"
[ "$(head -c 8 "$tmp/swab")" = badcbadc ] || fail "swab: the file holds '$(head -c 8 "$tmp/swab")', not the swapped bytes"
echo "ok: rotational, multi-conn, nofilter, swab"

# truncate: smaller, larger (zeroes past the end, which take only zeroes),
# rounded.
head -c 1048576 /dev/urandom > "$tmp/data"
run --filter=truncate file "$tmp/data" truncate=2M --run 'nbdsh --base-allocation -u "$uri" -c "
import errno
data = open(\"'"$tmp"'/data\", \"rb\").read()
assert h.get_size() == 2 * 1048576
assert h.pread(8192, 1048576 - 4096) == data[-4096:] + bytes(4096), \"a read across the end\"
assert h.pread(4096, 1536 * 1024) == bytes(4096), \"a read past the end\"
h.pwrite(bytes(8192), 1048576 - 4096 + 4096)  # zeroes past the end: fine
try:
    h.pwrite(b\"x\" * 512, 1536 * 1024)
    raise SystemExit(\"a write of data past the plugin end succeeded\")
except nbd.Error as e:
    assert e.errno == \"ENOSPC\", e.errno
h.zero(65536, 1048576 - 32768)
seen = []
h.block_status(2 * 1048576, 0, lambda m, o, e, err: seen.extend(e))
assert sum(seen[0::2]) == 2 * 1048576 and seen[-1] & 1, seen
"' || fail "truncate=2M"
run --filter=truncate file "$tmp/data" truncate=512K --run 'nbdinfo --size "$uri"' | grep -qx 524288 || fail "truncate=512K"
run --filter=truncate memory 1000000 round-up=4096 --run 'nbdinfo --size "$uri"' | grep -qx 1003520 || fail "round-up"
run --filter=truncate memory 1000000 round-down=4096 --run 'nbdinfo --size "$uri"' | grep -qx 999424 || fail "round-down"
echo "ok: truncate (larger, smaller, round-up, round-down)"

for bad in "nocache cachemode=sometimes" "nozero zeromode=emulate" "offset offset=lots" "delay rdelay=soon" \
           "error error=EAGAIN" "error error-rate=2" "fua fuamode=sometimes" "noparallel serialize=connections" \
           "rotational rotational=maybe" "multi-conn multi-conn-mode=emulate" "swab swab-bits=12" \
           "truncate truncate=big" "truncate round-up=0"; do
  set -- $bad
  f=$1; shift
  if run --filter="$f" memory 1M "$@" --run true 2>"$tmp/err"; then fail "--filter=$f $*: accepted"; fi
  grep -q "nbdcage: $f: " "$tmp/err" || { cat "$tmp/err"; fail "--filter=$f $*: message"; }
  echo "ok: refused --filter=$f $*: $(cat "$tmp/err")"
done
echo PASS
