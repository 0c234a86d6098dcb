#!/bin/sh
# The tar plugin: the seed example verbatim but for the program name
# (qemu-img writes disk.img into the member, in place), then reads of the
# member in GNU, long-name and pax archives checked by bytes against
# tar's own extraction; the archive stays valid and the other members
# untouched; a member that is missing, a damaged archive and a compressed
# one are refused with a reason; the member name is never granted as a path.
. "$(dirname "$0")/functions.sh"
requires tar qemu-img nbdcopy
cd "$tmp"
head -c 3145728 /dev/urandom > orig.img
cp orig.img disk.img
echo hello > a.txt
long=deep/$(printf 'directory-%.0s' 1 2 3 4 5 6 7 8 9 10 11 12)/long-name-disk.img
mkdir -p "$(dirname "$long")"
cp orig.img "$long"
tar cf data.tar a.txt disk.img deep
tar --format=posix -cf pax.tar a.txt disk.img

# The seed: new content written into the member.
head -c 3145728 /dev/urandom > disk.img
"$NBDCAGE" -U - tar tar=data.tar file=disk.img --run 'qemu-img convert -n disk.img $nbd' || fail "the seed example"
mkdir x && tar xf data.tar -C x || fail "the archive is no longer valid"
cmp -s disk.img x/disk.img || fail "the member does not hold what qemu-img wrote"
cmp -s x/a.txt a.txt && cmp -s "x/$long" orig.img || fail "another member changed"
echo "ok: the seed example (qemu-img convert -n into the member)"

# Reads, by bytes, in each kind of archive.
"$NBDCAGE" -U - tar tar=data.tar file=disk.img --run 'nbdcopy "$uri" got.img' && cmp -s got.img disk.img || fail "read"
"$NBDCAGE" -U - tar tar=data.tar file="$long" --run 'nbdcopy "$uri" got-long.img' && cmp -s got-long.img orig.img ||
  fail "a GNU long name"
"$NBDCAGE" -U - tar tar=pax.tar tar-entry=disk.img --run 'nbdcopy "$uri" got-pax.img' && cmp -s got-pax.img orig.img ||
  fail "a pax archive (tar-entry=)"
size=$("$NBDCAGE" -U - -r tar tar=data.tar file=a.txt --run 'nbdinfo --size "$uri"')
[ "$size" = 6 ] || fail "a.txt's size: $size"
echo "ok: reads in GNU, long-name and pax archives"

# Writes cannot spill over the member's end.
"$NBDCAGE" -U - tar tar=data.tar file=a.txt --run 'nbdsh -u "$uri" -c "
try:
    h.pwrite(b\"x\" * 7, 0)
    raise SystemExit(\"a write past the end was accepted\")
except nbd.Error:
    pass
h.pwrite(b\"HELLO\\n\", 0)"' || fail "bounded write"
tar xOf data.tar a.txt | grep -qx HELLO || fail "the write to a.txt is not in the archive"
tar xOf data.tar disk.img | cmp -s - disk.img || fail "the member after a.txt changed"
echo "ok: writes stay inside the member"

check_error() {  # check_error PATTERN ARGS...
  pattern=$1; shift
  if "$NBDCAGE" -U - tar "$@" --run true 2>err; then fail "accepted: $*"; fi
  grep -q -- "$pattern" err || { cat err; fail "$*: message lacks '$pattern'"; }
  echo "ok: refused $*: $(tail -1 err)"
}
check_error "there is no member 'nosuch.img'" tar=data.tar file=nosuch.img
check_error "is not a regular file" tar=data.tar file=deep/
cp data.tar damaged.tar
printf 'garbage!' | dd of=damaged.tar bs=1 seek=100 conv=notrunc status=none
check_error "is damaged, or this is not a tar archive" tar=damaged.tar file=a.txt
gzip -k data.tar
check_error "is damaged, or this is not a tar archive" tar=data.tar.gz file=a.txt
head -c 4000000 data.tar > short.tar
check_error "the archive is truncated" tar=short.tar file="$long"
check_error "tar needs tar=ARCHIVE and file=MEMBER" tar=data.tar
"$NBDCAGE" --dump-config tar tar=data.tar file=a.txt > policy
! grep -q "sandbox_path=.*a.txt" policy || fail "the member name was granted as a path"
grep -qx "sandbox_path=$tmp/data.tar" policy || fail "the archive is not granted"
echo PASS
