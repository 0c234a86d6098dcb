#!/bin/sh
# The file plugin takes nbdkit's parameters: dir= (each regular file and
# block device in a directory, by export name, listed by NBD_OPT_LIST),
# fadvise= (the hint reaches the kernel), cache=none (what was served
# does not stay in the page cache), fd=/dirfd= (descriptors given to
# nbdcage); wrong values are clear startup errors.
. "$(dirname "$0")/functions.sh"
requires nbdinfo nbdcopy fincore strace
d=$tmp/dir
mkdir "$d" "$d/subdir"
head -c 1048576 /dev/urandom > "$d/a.img"
head -c 2097152 /dev/urandom > "$d/b.img"
ln -s a.img "$d/link"
mkfifo "$d/fifo"
: > "$d/.hidden"

# dir=: the list, each file by name, the refusals.
"$NBDCAGE" -U - file dir="$d" --run '
  nbdinfo --list --json "$uri" > '"$tmp"'/list
  for name in a.img b.img link; do nbdcopy "nbd+unix:///$name?socket=$unixsocket" '"$tmp"'/out.$name; done
  for bad in "" subdir fifo nosuch; do
    if nbdinfo --size "nbd+unix:///$bad?socket=$unixsocket" 2>/dev/null; then echo "served $bad"; fi
  done
  nbdsh -c "
h.set_export_name(\"../a.img\")
try:
    h.connect_unix(\"$unixsocket\")
    print(\"served ../a.img\")
except nbd.Error:
    pass"' > "$tmp/served" 2>"$tmp/err" || { cat "$tmp/err"; fail "dir="; }
[ ! -s "$tmp/served" ] || fail "dir=: $(cat "$tmp/served")"
names=$(sed -n 's/.*"export-name": "\(.*\)".*/\1/p' "$tmp/list" | sort | tr '\n' ' ')
[ "$names" = ".hidden a.img b.img link " ] || fail "dir=: listed '$names'"
cmp -s "$d/a.img" "$tmp/out.a.img" && cmp -s "$d/b.img" "$tmp/out.b.img" && cmp -s "$d/a.img" "$tmp/out.link" ||
  fail "dir=: wrong bytes"
grep -q "the default export is refused" "$tmp/err" || fail "dir=: no reason given for refusing ''"
echo "ok: dir= lists and serves $names, refuses '', subdir, fifo, missing and ../"
# Writes go to the named file only.
"$NBDCAGE" -U - file dir="$d" --run 'nbdsh -u "nbd+unix:///b.img?socket=$unixsocket" -c "h.pwrite(b\"written\", 4096)"'
[ "$(dd if="$d/b.img" bs=1 skip=4096 count=7 status=none)" = written ] || fail "dir=: the write did not reach b.img"
cmp -s "$d/a.img" "$tmp/out.a.img" || fail "dir=: a.img changed"
echo "ok: dir= writes reach the file named"

# fadvise=: the hint is given for the file served (seen from outside).
for a in normal random sequential; do
  # (LeakSanitizer cannot work under ptrace: a sanitizer build must not try.)
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -e trace=fadvise64 -o "$tmp/trace" "$NBDCAGE" -U - file "$d/a.img" fadvise=$a --run 'nbdinfo --size "$uri"' >/dev/null
  A=$(echo "$a" | tr a-z A-Z)
  grep -q "fadvise64([0-9]*, 0, 0, POSIX_FADV_$A)" "$tmp/trace" || { cat "$tmp/trace"; fail "fadvise=$a: no such hint"; }
done
echo "ok: fadvise=normal|random|sequential"

# cache=none: a read of the whole file leaves little of it cached.
# (On a file system whose pages cannot be dropped, tmpfs, there is nothing to see.)
big=$tmp/big.img
[ "$(stat -f -c %T "$tmp")" != tmpfs ] || { big=/var/tmp/nbdcage-cache-test.$$; cleanup_fn "rm -f $big"; }
head -c 16777216 /dev/urandom > "$big"
evict() { /usr/bin/python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$1"; }
resident() { fincore --bytes --noheadings --output RES "$1" | tr -d ' '; }
evict "$big"
"$NBDCAGE" -U - file "$big" --run 'nbdcopy "$uri" null:'
cached=$(resident "$big")
evict "$big"
"$NBDCAGE" -U - file "$big" cache=none --run 'nbdcopy "$uri" null:'
uncached=$(resident "$big")
echo "page cache after reading 16 MiB: cache=default $cached bytes, cache=none $uncached bytes"
if [ "$(stat -f -c %T "$big")" = tmpfs ]; then
  echo "(cache=none not checked: $big is on tmpfs)"
else
  [ "$cached" -gt 12000000 ] || fail "cache=default: only $cached bytes cached: the measure is wrong"
  [ "$uncached" -lt 4194304 ] || fail "cache=none: $uncached bytes stayed in the page cache"
  echo "ok: cache=none"
fi

# fd= and dirfd=: descriptors given to nbdcage (as a parent process would),
# served by the plugin host that gets them; read-only unless opened so.
"$NBDCAGE" -U - file fd=3 --run 'nbdcopy "$uri" "'"$tmp"'/fd.out"; nbdinfo --json "$uri"' 3<"$d/b.img" > "$tmp/info" ||
  fail "fd="
cmp -s "$d/b.img" "$tmp/fd.out" || fail "fd=: wrong bytes"
grep -q '"is_read_only": true' "$tmp/info" || fail "fd= opened read-only is served writable"
"$NBDCAGE" -U - file fd=3 --run 'nbdsh -u "$uri" -c "h.pwrite(b\"through fd\", 0)"' 3<>"$d/b.img" || fail "fd= writes"
[ "$(head -c 10 "$d/b.img")" = "through fd" ] || fail "fd=: the write did not reach the file"
"$NBDCAGE" -U - file dirfd=3 --run '
  nbdinfo --list --json "$uri" > "'"$tmp"'/dirfd.json"
  nbdcopy "nbd+unix:///a.img?socket=$unixsocket" "'"$tmp"'/dirfd.out"' 3<"$d" || fail "dirfd="
grep -q '"export-name": "a.img"' "$tmp/dirfd.json" || fail "dirfd=: a.img is not listed"
cmp -s "$d/a.img" "$tmp/dirfd.out" || fail "dirfd=: wrong bytes"
echo "ok: fd= (read-only and read-write) and dirfd="

check_error() {  # check_error PATTERN ARGS...
  pattern=$1; shift
  if "$NBDCAGE" -U - file "$@" --run true 2>"$tmp/err"; then fail "accepted: $*"; fi
  grep -q -- "$pattern" "$tmp/err" || { cat "$tmp/err"; fail "$*: message lacks '$pattern'"; }
  echo "ok: refused $*: $(tail -1 "$tmp/err")"
}
check_error "fd=7: descriptor 7 is not open here" fd=7
check_error "dirfd=7: descriptor 7 is not open here" dirfd=7
check_error "fadvise=often: it must be normal, random or sequential" "$d/a.img" fadvise=often
check_error "cache=some: it must be default or none" "$d/a.img" cache=some
check_error "give one of file=, dir=, fd= and dirfd=" file="$d/a.img" dir="$d"
check_error "not a directory" dir="$d/a.img"
check_error "the file parameter is required" cache=none
echo PASS
