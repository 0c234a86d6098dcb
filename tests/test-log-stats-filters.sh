#!/bin/sh
# The filters that watch: log writes each transaction (Connect, every
# request with its parameters and its result, errors by name, extents,
# Disconnect with the count, ListExports) to logfile=, truncating or
# appending; stats writes per-kind operations, bytes and a size/alignment
# histogram to statsfile= at exit.  Checked against what the client did.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdcopy nbdinfo
cd "$tmp"

"$NBDCAGE" -U - --filter=log --filter=error memory 1M logfile=log.txt error-pwrite-rate=1 error-pwrite=ENOSPC --run '
  nbdinfo --list "$uri" > /dev/null
  nbdsh --base-allocation -u "$uri" -c "
h.pread(512, 4096)
h.zero(4096, 8192, nbd.CMD_FLAG_NO_HOLE)
h.flush()
h.block_status(65536, 0, lambda *a: 0)
try:
    h.pwrite(b\"x\" * 1024, 0, nbd.CMD_FLAG_FUA)
    raise SystemExit(\"the write did not fail\")
except nbd.Error:
    pass
"'
expect_line() { grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\.[0-9]{6} $1" log.txt || { cat log.txt; fail "no line: $1"; }; }
expect_line 'ListExports id=1 readonly=0 tls=0'
expect_line '\.\.\.ListExports id=1 exports=\(""\) return=0'
expect_line 'connection=2 Connect export="" tls=0 size=0x100000 .*write=1 flush=1'
expect_line 'connection=2 Read id=1 offset=0x1000 count=0x200 \.\.\.'
expect_line 'connection=2 \.\.\.Read id=1 return=0'
expect_line 'connection=2 Zero id=2 offset=0x2000 count=0x1000 trim=0 fua=0 fast=0'
expect_line 'connection=2 Flush id=3'
expect_line 'connection=2 \.\.\.Extents id=4 extents=\(\(0x0, 0x10000, "hole,zero"\)\) return=0'
expect_line 'connection=2 Write id=5 offset=0x0 count=0x400 fua=1'
expect_line 'connection=2 \.\.\.Write id=5 return=-1 error=ENOSPC'
expect_line 'connection=2 Disconnect transactions=5'
echo "ok: log lines for every kind of transaction"

lines=$(wc -l < log.txt)
"$NBDCAGE" -U - --filter=log memory 1M logfile=log.txt logappend=true --run 'nbdinfo --size "$uri" >/dev/null'
[ "$(wc -l < log.txt)" -gt "$lines" ] && [ "$(grep -c 'Disconnect transactions=5' log.txt)" = 1 ] ||
  fail "logappend=true did not append"
"$NBDCAGE" -U - --filter=log memory 1M logfile=log.txt --run 'nbdinfo --size "$uri" >/dev/null'
if grep -q 'transactions=5' log.txt; then fail "without logappend the log was not truncated"; fi
echo "ok: logappend"

# stats: 4 MiB written in 256 KiB requests at aligned offsets, 3 reads.
head -c 4M /dev/urandom > src
"$NBDCAGE" -U - --filter=stats memory 4M statsfile=stats.txt --run '
  nbdcopy --request-size=262144 src "$uri"
  nbdsh -u "$uri" -c "h.pread(4096, 0); h.pread(4096, 8192); h.pread(512, 512); h.flush()"'
grep -q '^write: 16 ops, [0-9.]* s, 4.00 MiB' stats.txt || { cat stats.txt; fail "stats: the writes"; }
grep -q '^read: 3 ops, [0-9.]* s, 8.50 KiB' stats.txt || { cat stats.txt; fail "stats: the reads"; }
grep -q '^flush: 1 ops' stats.txt || { cat stats.txt; fail "stats: the flush"; }
grep -q '^total: 20 ops' stats.txt || { cat stats.txt; fail "stats: the total"; }
grep -q '^    18 bits: 100.0% (16 reqs, 4.00 MiB total)' stats.txt || { cat stats.txt; fail "stats: the write sizes"; }
grep -q '^    12 bits: 66.7% (2 reqs, 8.00 KiB total)' stats.txt || { cat stats.txt; fail "stats: the read sizes"; }
grep -q '^         13 bit aligned: 100.0% (2)' stats.txt && grep -q '^         64 bit aligned:  50.0% (1)' stats.txt || { cat stats.txt; fail "stats: the read alignments"; }
"$NBDCAGE" -U - --filter=stats memory 4M statsfile=stats.txt statsappend=true --run 'nbdinfo --size "$uri" >/dev/null'
[ "$(grep -c '^total:' stats.txt)" = 2 ] || fail "statsappend=true did not append"
echo "ok: stats"

for bad in "log" "log logscript=true" "log logfile=$tmp/no/such/dir/x" "stats" "stats statsfile=x statsthreshold=101"; do
  set -- $bad
  f=$1; shift
  if "$NBDCAGE" -U - --filter=$f memory 1M "$@" --run true 2> err; then fail "'$bad' was taken"; fi
  grep -q "$f" err || { cat err; fail "'$bad': no clear error"; }
done
echo "ok: bad parameters"
