#!/bin/sh
# Debian's nbdkit plugins, each loaded as an nbdkit user would (by short
# name where nbdcage has no plugin of that name, else by path), with
# nbdkit's documented syntax, sandboxed, and the bytes each serves checked
# against a reference computed here (not against nbdkit).  The language
# plugins (python, perl, lua, tcl, example4) are test-drop-in.sh's,
# ondemand is test-default-export.sh's.  Prints one line per plugin:
# checked, or why not.
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo nbdsh
dir=${NBDKIT_PLUGINDIR:?}
[ -f "$dir/nbdkit-data-plugin.so" ] || { echo "SKIP: Debian's nbdkit plugins are not installed"; exit 77; }
cd "$tmp"
checked=0
ok() { echo "ok: $*"; checked=$((checked + 1)); }
have() { [ -e "$dir/nbdkit-$1-plugin.so" ] || { echo "(no nbdkit $1 plugin)"; false; }; }
pyref() { /usr/bin/python3 -c "import sys; sys.stdout.buffer.write($1)" > ref; }
copy() {  # copy OUT ARGS...: nbdcage ARGS, the export copied to OUT
  out=$1; shift
  "$NBDCAGE" -U - "$@" --run "nbdcopy \"\$uri\" '$tmp/$out'" 2>err || { cat err; fail "nbdcage $*"; }
}

have data && { copy got "$dir/nbdkit-data-plugin.so" "1 2 3 @0x1000 4 @^8 5*3"; pyref 'bytes([1,2,3]) + bytes(0x1000-3) + bytes([4]) + bytes(7) + bytes([5,5,5])'
  cmp -s ref got || fail "data"; ok "data (by path; its expression syntax)"; }
have info && { "$NBDCAGE" -U - info --run 'nbdcopy "nbd+unix:///hello-world?socket=$unixsocket" -' > got
  [ "$(cat got)" = hello-world ] || fail "info: '$(cat got)'"; ok "info (mode=exportname)"; }
head -c 1048576 /dev/urandom > a; head -c 524288 /dev/urandom > b
have split && { copy got "$dir/nbdkit-split-plugin.so" a b; cat a b | cmp -s - got || fail "split"; ok "split (by path; two files, concatenated)"; }
have partitioning && { copy got "$dir/nbdkit-partitioning-plugin.so" a b
  # MBR, first partition at sector 2048 holding a, the second right after, holding b.
  dd if=got bs=512 skip=2048 count=2048 status=none | cmp -s - a || fail "partitioning: partition 1"
  dd if=got bs=512 skip=4096 count=1024 status=none | cmp -s - b || fail "partitioning: partition 2"
  [ "$(od -An -tx1 -j510 -N2 got | tr -d ' ')" = 55aa ] || fail "partitioning: no MBR signature"
  ok "partitioning (by path; MBR, each file's bytes in its partition)"; }
mkdir fd; echo "floppy content" > fd/hello.txt
have floppy && { copy got floppy fd
  [ "$(od -An -tx1 -j510 -N2 got | tr -d ' ')" = 55aa ] || fail "floppy: no boot signature"
  grep -q "floppy content" got || fail "floppy: the file is not in the image"
  ok "floppy (FAT image of a directory)"; }
have tmpdisk && { copy got tmpdisk 16M
  [ "$(od -An -tx1 -j1080 -N2 got | tr -d ' ')" = 53ef ] || fail "tmpdisk: no ext2/3/4 superblock"
  ok "tmpdisk (runs mke2fs)"; }
have linuxdisk && { copy got linuxdisk fd size=+4M
  [ "$(od -An -tx1 -j510 -N2 got | tr -d ' ')" = 55aa ] || fail "linuxdisk: no partition table"
  grep -q "floppy content" got || fail "linuxdisk: the file is not in the image"
  ok "linuxdisk (a file system of a directory)"; }
have example2 && { copy got example2 file=a; cmp -s a got || fail "example2"; ok "example2 (serves a file)"; }
have example3 && { [ "$("$NBDCAGE" -U - example3 size=1M --run 'nbdinfo --size "$uri"')" = 1048576 ] || fail "example3"
  ok "example3 (a temporary file in /var/tmp)"; }
have eval && { copy got "$dir/nbdkit-eval-plugin.so" get_size='echo 4096' pread='yes eval | head -c $3'
  yes eval | head -c 4096 | cmp -s - got || fail "eval"; ok "eval (by path)"; }
if have cc && command -v cc >/dev/null; then
  cat > t.c <<'C'
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
#include <string.h>
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
static void *o (int r) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t s (void *h) { return 8192; }
static int p (void *h, void *b, uint32_t c, uint64_t off, uint32_t f) { memset (b, 'c', c); return 0; }
static struct nbdkit_plugin plugin = { .name = "t", .open = o, .get_size = s, .pread = p };
NBDKIT_REGISTER_PLUGIN (plugin)
C
  copy got cc t.c; pyref 'b"c" * 8192'; cmp -s ref got || fail "cc"; ok "cc (a C script, compiled in the host)"
fi
have nbd && {
  start_nbdcage memory 1M
  nbdsh -u "$uri" -c 'h.pwrite(b"through nbd" * 100, 0)'
  "$NBDCAGE" -U - nbd socket="$sock" --run 'nbdsh -u "$uri" -c "assert h.pread(1100, 0) == b\"through nbd\" * 100"' ||
    fail "nbd"
  kill "$pid"; wait "$pid" || true
  ok "nbd (socket=: a proxy to another server)"; }

# Plugins nbdcage has one of its own by the same name: Debian's, by path.
for p in zero null example1; do
  have $p || continue
  size=$("$NBDCAGE" -U - "$dir/nbdkit-$p-plugin.so" --run 'nbdinfo --size "$uri"')
  case $p in zero) want=0 ;; null) want=0 ;; example1) want=104857600 ;; esac
  [ "$size" = "$want" ] || fail "$p: size $size"
  ok "$p (by path; nbdcage's own answers to the name)"
done
have full && { "$NBDCAGE" -U - "$dir/nbdkit-full-plugin.so" 1M --run 'nbdsh -u "$uri" -c "
assert h.pread(512, 0) == bytes(512)
try:
    h.pwrite(b\"x\", 0)
    raise SystemExit(1)
except nbd.Error as e:
    assert e.errno == \"ENOSPC\""' 2>/dev/null || fail "full"; ok "full (by path)"; }
have random && { copy r1 "$dir/nbdkit-random-plugin.so" 1M seed=9; copy r2 "$dir/nbdkit-random-plugin.so" 1M seed=9
  cmp -s r1 r2 || fail "random: the same seed differs"; ok "random (by path)"; }
have sparse-random && { copy s1 "$dir/nbdkit-sparse-random-plugin.so" 8M seed=9
  copy s2 "$dir/nbdkit-sparse-random-plugin.so" 8M seed=9; cmp -s s1 s2 || fail "sparse-random"; ok "sparse-random (by path)"; }
have pattern && { copy got "$dir/nbdkit-pattern-plugin.so" 64K
  /usr/bin/python3 -c "
import struct, sys
sys.stdout.buffer.write(b''.join(struct.pack('>Q', o) for o in range(0, 65536, 8)))" > ref
  cmp -s ref got || fail "pattern"; ok "pattern (by path)"; }
have curl && { copy got --allow-network "$dir/nbdkit-curl-plugin.so" "file://$tmp/a"; cmp -s a got || fail "curl"
  ok "curl (by path, file://)"; }

for p in S3 cdi iso ssh torrent ruby; do
  case $p in
    S3) why="needs boto3 and an S3 service" ;; cdi) why="needs podman and a registry" ;;
    iso) why="needs xorriso or genisoimage" ;; ssh) why="needs an ssh server" ;; torrent) why="needs peers" ;;
    ruby) why="Debian 12's crashes in Ruby 3.1 under nbdkit too" ;;
  esac
  [ -e "$dir/nbdkit-$p-plugin.so" ] && echo "not checked: $p ($why)"
done
echo "$checked plugins checked"
echo PASS
