#!/bin/sh
# nbdcage's data plugin, with nbdkit's data format: each documented form
# checked by bytes against a reference built here in Python; the man
# page's script example (an endless script cut by a slice) ends at once,
# as the script gets SIGPIPE; raw= and base64=; size= truncates and
# extends; the disk is writable; bad data is refused with where it failed.
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdsh
cd "$tmp"
check() {  # check NAME PYTHON-BYTES ARGS...
  name=$1 ref=$2; shift 2
  /usr/bin/python3 -c "import sys; sys.stdout.buffer.write($ref)" > want
  timeout 60 "$NBDCAGE" -U - data "$@" --run 'nbdcopy "$uri" got' 2>err || { cat err; fail "$name"; }
  cmp -s want got || { od -A d -t x1 got | head -5; fail "$name: wrong bytes"; }
  echo "ok: $name"
}
check "bytes and @offset" 'bytes([0,1,2,3]) + bytes(0x1fe - 4) + bytes([0x55, 0xaa])' '0 1 2 3 @0x1fe 0x55 0xaa'
check "@^align, @-n, le16:" 'bytes([0,1,2,3]) + bytes(0x1fe - 4) + bytes([0x55, 0xaa])' '0 1 2 3 @^0x200 @-2 le16:0xaa55'
check "octal, @+n" 'bytes([8]) + bytes(4) + bytes([255])' '010 @+4 0xff'
check "words" 'bytes([0,0,0,1, 2,0,0,0, 0,0,0,0,0,0,1,0, 3,0]) ' 'be32:1 le32:2 be64:256 le16:3'
check "strings" 'b"hi\n\t\"q\\\x41"' '"hi\n\t\"q\\\x41"'
check "repeat" 'bytes([0xff]) * 16 + bytes([0x55, 0xaa]) * 256' '0xFF*16 ( 0x55 0xAA ) * 256'
check "slices" 'b"bcd" + b"ab" + b"ef"' '"abcdef"[1:4] "abcdef"[:2] "abcdef"[4:]'
check "names" '(bytes(0x1fe) + bytes([0x55, 0xaa])) * 2' ' ( 0x55 0xAA ) -> \boot-signature
  ( @0x1fe \boot-signature ) -> \sector
  \sector \sector '
check "variables" 'bytes([0x55, 0xaa]) * 16' '$pattern*16' pattern='0x55 0xAA'
# (The environment: the sandbox passes little of it; the reason says so.)
if pattern='1 2' "$NBDCAGE" -U - data '$pattern*3' --run true 2>err; then :; else
  grep -q "give it as a parameter, pattern=" err || { cat err; fail "\$VAR from the environment: no reason"; }
fi
check "comments" 'bytes([1, 2])' '1 # one
2 # two'
echo "file content" > part
check "<FILE" 'b"<" + b"file content\n" + b">"' '"<" <'"$tmp"'/part ">"'
check "the man page's script, cut by a slice" 'b"".join(b"%04d" % i for i in range(8192))' \
  ' <( i=0
       while :; do
           printf "%04d" $i; i=$((i+1))
       done )[:32768] '
check "a finite script" 'b"abc" * 2' '<(printf abc)*2'
check "size= extends" 'bytes([1]) + bytes(4095)' '1' size=4K
check "size= truncates" 'bytes([1, 2])' '1 2 3 4' size=2
check "raw=" 'b"raw bytes"' raw='raw bytes'
check "base64=" 'b"hello, world"' base64='aGVsbG8sIHdvcmxk'
check "allocator=zstd" 'bytes([7]) * 100000' '7*100000' allocator=zstd

# Writable: writes, zeroes, trims; extents show the holes.
"$NBDCAGE" -U - data '@1048576 1' --run 'nbdsh --base-allocation -u "$uri" -c "
assert h.get_size() == 1048577
h.pwrite(b\"written\", 4096)
assert h.pread(7, 4096) == b\"written\"
assert h.pread(1, 1048576) == b\"\x01\"
h.zero(7, 4096)
assert h.pread(7, 4096) == bytes(7)
seen = []
h.block_status(65536, 0, lambda m, o, e, err: seen.extend(e))
assert seen[1] & 1, \"the start is not a hole\"
"' || fail "writes"
echo "ok: writable, holes"

refused() {  # refused PATTERN ARGS...
  pattern=$1; shift
  if "$NBDCAGE" -U - data "$@" --run true 2>err; then fail "accepted: $*"; fi
  grep -q -- "$pattern" err || { cat err; fail "$*: message lacks '$pattern'"; }
  echo "ok: refused $*: $(tail -1 err | sed 's/.*error: //')"
}
refused "256 is not a byte" '1 256'
refused "'(' is not closed at character" '( 1 2'
refused "is not defined" '\nosuch'
refused "neither a parameter nor in the environment" '$nosuchvar'
refused "does not fit" 'le16:0x10000'
refused "moves before the start" '1 @-2'
refused "failed (exit status 3)" '<(exit 3)'
refused "is not a base64 character" base64='a!b'
refused "give only one of data=, raw= and base64=" data='1' raw=x
refused "more than 1 GiB of data" '(0 1 2 3 4 5 6 7)*200000000'
echo PASS
