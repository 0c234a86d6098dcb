#!/bin/sh
# The file plugin makes data durable when asked: a write with FUA, and a
# FLUSH, each reach fdatasync(2) before they are answered; a plain write
# does not pay for one.
. "$(dirname "$0")/functions.sh"
requires strace qemu-io nbdsh
truncate -s 1M "$tmp/disk"

count_syncs() {  # count_syncs NBDSH-COMMANDS
  # (LeakSanitizer cannot work under a tracer: off for these runs.)
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -qq -e trace=fdatasync -o "$tmp/trace" \
    "$NBDCAGE" -U - file "$tmp/disk" --run "nbdsh -u \"\$uri\" -c '$1'" >/dev/null
  grep -c 'fdatasync(' "$tmp/trace" || true
}

n=$(count_syncs 'h.pwrite(b"a" * 512, 0)')
[ "$n" -eq 0 ] || fail "a plain write synced ($n)"
n=$(count_syncs 'h.pwrite(b"b" * 512, 0, nbd.CMD_FLAG_FUA)')
[ "$n" -ge 1 ] || fail "a FUA write did not sync"
n=$(count_syncs 'h.pwrite(b"c" * 512, 0); h.flush()')
[ "$n" -ge 1 ] || fail "FLUSH did not sync"
[ "$(head -c 3 "$tmp/disk")" = ccc ] || fail "data not on disk"
echo PASS
