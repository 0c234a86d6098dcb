#!/bin/sh
# nbdcage's sh and eval plugins, in nbdkit's shell plugin protocol: a
# script that keeps its disk in $tmpdir is written and read back; config
# keys reach the script; open's handle and the export name reach the
# methods; list_exports' forms; errno names on stderr become the client's
# errors; exit 2 means "not provided", 3 false; extents, block sizes,
# descriptions; sh - reads the script from stdin; eval with missing=.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdinfo nbdcopy
cd "$tmp"
cat > disk.sh <<'SH'
#!/bin/sh
disk=$tmpdir/disk
case "$1" in
  config) case "$2" in size) echo "$3" > "$tmpdir/size" ;; *) echo "EINVAL unknown key $2" >&2; exit 1 ;; esac ;;
  config_complete) [ -s "$tmpdir/size" ] || { echo "size= is required" >&2; exit 1; }
                   truncate -s "$(cat "$tmpdir/size")" "$disk" ;;
  thread_model) echo parallel ;;
  list_exports) echo INTERLEAVED; echo first; echo "the first"; echo second; echo "the second" ;;
  default_export) echo first ;;
  open) echo "handle-for-$3" ;;
  export_description) echo "described by $2" ;;
  get_size) stat -c %s "$disk" ;;
  block_size) echo "512 4K 1M" ;;
  can_write|can_flush|can_trim|can_zero|can_extents|can_multi_conn) exit 0 ;;
  is_rotational) exit 3 ;;
  can_fua) echo native ;;
  pread) [ "$4" -lt 1048576 ] || { echo "ENOSPC no reads past 1M" >&2; exit 1; }
         dd if="$disk" skip="$4" count="$3" iflag=skip_bytes,count_bytes status=none ;;
  pwrite) echo "$5" > "$tmpdir/last-flags"; dd of="$disk" seek="$4" oflag=seek_bytes conv=notrunc status=none ;;
  zero) echo "EOPNOTSUPP zero by writing, please" >&2; exit 1 ;;
  trim|flush) ;;
  extents) echo "0 4096"; echo "4096 $(( $3 + $4 - 4096 )) hole,zero" ;;
  *) exit 2 ;;
esac
SH
chmod +x disk.sh
"$NBDCAGE" -U - sh disk.sh size=2M --run '
  nbdinfo --list --json "$uri" > list.json
  nbdinfo --json "$uri" > info.json
  nbdsh --base-allocation -u "nbd+unix:///second?socket=$unixsocket" -c "
import errno
h.pwrite(b\"shell\" * 1024, 8192, nbd.CMD_FLAG_FUA)
assert h.pread(5120, 8192) == b\"shell\" * 1024
h.zero(4096, 8192)
assert h.pread(4096, 8192) == bytes(4096), \"zero fell back to writes\"
h.trim(4096, 65536)
h.flush()
try:
    h.pread(512, 1048576)
    raise SystemExit(\"a failing read succeeded\")
except nbd.Error as e:
    assert e.errno == \"ENOSPC\", e.errno
seen = []
h.block_status(65536, 0, lambda m, o, e, err: seen.extend(e))
assert seen[:4] == [4096, 0, 61440, 3], seen
assert h.get_block_size(nbd.SIZE_MINIMUM) == 512 and h.get_block_size(nbd.SIZE_PREFERRED) == 4096
assert not h.is_rotational() and h.can_fua()
print(h.get_export_name() if hasattr(h, \"get_export_name\") else \"\")
"' > out 2>err || { cat err; fail "the shell plugin"; }
grep -q '"export-name": "first"' list.json && grep -q '"description": "the second"' list.json ||
  { cat list.json; fail "list_exports INTERLEAVED"; }
grep -q '"export-name": "first"' info.json || fail "default_export: $(cat info.json)"
grep -q '"description": "described by handle-for-first"' info.json || fail "open's handle: $(cat info.json)"
grep -q "zero: zero by writing, please" err || fail "the script's message did not reach the log"
echo "ok: a disk in a script: data, zero by writing, extents, errors, exports, handles"

# Not provided (exit 2) and bad configuration.
if "$NBDCAGE" -U - sh disk.sh colour=blue --run true 2>err; then fail "an unknown key was accepted"; fi
grep -q "unknown key colour" err || { cat err; fail "config error"; }
if "$NBDCAGE" -U - sh disk.sh --run true 2>err; then fail "a missing size was accepted"; fi
grep -q "size= is required" err || { cat err; fail "config_complete error"; }
echo "ok: config and config_complete errors"

# sh - and eval.
"$NBDCAGE" -U - sh - size=64K --run 'nbdinfo --size "$uri"' < disk.sh > out || fail "sh -"
[ "$(cat out)" = 65536 ] || fail "sh -: size $(cat out)"
"$NBDCAGE" -U - eval get_size='echo 8192' pread='yes eval | head -c $3' missing='exit 2' \
  --run 'nbdcopy "$uri" got' || fail "eval"
yes eval | head -c 8192 | cmp -s - got || fail "eval: wrong bytes"
if "$NBDCAGE" -U - eval get_size='echo 8192' pread='echo "EROFS no" >&2; exit 1' --run 'nbdcopy "$uri" got2' 2>err; then
  fail "a failing eval read succeeded"
fi
grep -q "pread: no" err || { cat err; fail "eval: error message"; }
"$NBDCAGE" sh disk.sh --dump-plugin | grep -qx "max_known_status=3" || fail "--dump-plugin max_known_status"
echo "ok: sh -, eval, missing=, --dump-plugin"
echo PASS
