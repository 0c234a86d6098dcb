#!/bin/sh
# The memory plugin takes nbdkit's allocator= parameter: sparse (the
# default), zstd (pages kept compressed) and malloc[,mlock=true] (one flat
# array).  Each keeps the bytes written, zeroes what is zeroed and trimmed,
# and reports extents as it should; zstd really compresses (the plugin
# host's memory grows by far less than the data); a bad allocator or
# option is a clear startup error.
. "$(dirname "$0")/functions.sh"
requires nbdsh

roundtrip() {  # roundtrip ALLOCATOR: bytes, zero, trim and extents
  "$NBDCAGE" -U - memory 64M allocator="$1" --run 'nbdsh --base-allocation -u "$uri" -c "
import os
a = os.urandom(100000) + bytes(200000) + b\"x\" * 50000
h.pwrite(a, 12345)
assert h.pread(len(a), 12345) == a, \"read back\"
h.zero(20000, 40000)
h.trim(1000, 100000)
b = bytearray(a)
b[40000 - 12345:60000 - 12345] = bytes(20000)
b[100000 - 12345:101000 - 12345] = bytes(1000)
assert h.pread(len(b), 12345) == bytes(b), \"after zero and trim\"
assert h.pread(65536, 32 * 1024 * 1024) == bytes(65536), \"never written\"
holes = []
def seen(meta, offset, entries, err):
    holes.extend(entries)
h.block_status(64 * 1024 * 1024, 0, seen)
zeroes = sum(entries for entries, flags in zip(holes[0::2], holes[1::2]) if flags & 2)
open(\"'"$tmp"'/zero-bytes\", \"w\").write(str(zeroes))
"' 2>"$tmp/err" || { cat "$tmp/err"; fail "allocator=$1"; }
  echo "ok: allocator=$1: $(cat "$tmp/zero-bytes") bytes reported as zeroes"
}
roundtrip sparse
[ "$(cat "$tmp/zero-bytes")" -gt $((60 * 1024 * 1024)) ] || fail "sparse: the unwritten part is not a hole"
roundtrip zstd
[ "$(cat "$tmp/zero-bytes")" -gt $((60 * 1024 * 1024)) ] || fail "zstd: the unwritten part is not a hole"
roundtrip malloc
[ "$(cat "$tmp/zero-bytes")" -eq 0 ] || fail "malloc: reports holes it cannot have"
roundtrip malloc,mlock=false
# mlock=true within the memory-lock limit the plugin host has.
"$NBDCAGE" -U - memory 1M allocator=malloc,mlock=true --run 'nbdinfo --size "$uri"' > "$tmp/size" 2>"$tmp/err" ||
  { cat "$tmp/err"; fail "allocator=malloc,mlock=true"; }
[ "$(cat "$tmp/size")" = 1048576 ] || fail "mlock=true: size"
echo "ok: allocator=malloc,mlock=true"

# zstd compresses: 64 MiB of text costs the host a fraction of it.
rss_growth() {  # rss_growth ALLOCATOR: KiB the host grew by for 64 MiB of text
  start_nbdcage memory 256M allocator="$1"
  host=$(host_pids "$pid" | head -1)
  before=$(awk '/^VmRSS:/ { print $2 }' "/proc/$host/status")
  nbdsh -u "$uri" -c "
text = b'nbdcage keeps plugins in a cage. ' * 32768
for i in range(64):
    h.pwrite(text[:1048576], i * 1048576)"
  after=$(awk '/^VmRSS:/ { print $2 }' "/proc/$host/status")
  kill "$pid"; wait "$pid" || true
  echo $((after - before))
}
if ldd "${NBDCAGE_PLUGINHOST:?}" 2>/dev/null | grep -q libasan; then
  # Its quarantine keeps what was freed: the host's memory says nothing.
  echo "(zstd's compression not measured under AddressSanitizer)"
else
  sparse=$(rss_growth sparse)
  zstd=$(rss_growth zstd)
  echo "host memory for 64 MiB of text: sparse $sparse KiB, zstd $zstd KiB"
  [ "$sparse" -gt 50000 ] || fail "sparse grew by $sparse KiB only: the measure is wrong"
  [ "$zstd" -lt $((sparse / 4)) ] || fail "zstd does not compress: $zstd KiB against sparse's $sparse"
fi

check_error() {  # check_error PATTERN ARGS...
  pattern=$1; shift
  if "$NBDCAGE" -U - memory 1M "$@" --run true 2>"$tmp/err"; then fail "accepted: $*"; fi
  grep -q -- "$pattern" "$tmp/err" || { cat "$tmp/err"; fail "$*: message lacks '$pattern'"; }
  echo "ok: refused $*"
}
check_error "the allocator must be sparse, malloc or zstd" allocator=bogus
check_error "unknown allocator option 'mlock=true'" allocator=sparse,mlock=true
check_error "could not decipher boolean" allocator=malloc,mlock=perhaps
# (AddressSanitizer makes mlock do nothing: no limit to meet there.)
if ! ldd "$NBDCAGE_PLUGINHOST" 2>/dev/null | grep -q libasan && [ "$(ulimit -l)" != unlimited ] &&
   [ "$(ulimit -l)" -lt 65536 ]; then
  check_error "mlock of 67108864 bytes" size=64M allocator=malloc,mlock=true
fi
"$NBDCAGE" memory 1M --dump-plugin > "$tmp/dump"
grep -qx "mlock=yes" "$tmp/dump" && grep -qx "zstd=yes" "$tmp/dump" || fail "--dump-plugin lacks mlock=yes, zstd=yes"
echo PASS
