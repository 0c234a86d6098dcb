#!/bin/sh
# qemu-img convert out of and into the file plugin; bytes compared, and the
# sparse region stays sparse on the way in.
. "$(dirname "$0")/functions.sh"
requires qemu-img cmp

head -c 3M /dev/urandom > "$tmp/src"
truncate -s 8M "$tmp/src"
head -c 1M /dev/urandom >> "$tmp/src"

# Out: read the file through nbdcage.
"$NBDCAGE" -U - file "$tmp/src" --run "qemu-img convert -f raw \"\$nbd\" -O raw '$tmp/out'"
cmp "$tmp/src" "$tmp/out" || fail "qemu-img convert out of the file plugin differs"

# In: write into a file served by nbdcage (qemu-img uses WRITE_ZEROES and FLUSH).
truncate -s 9M "$tmp/target"
"$NBDCAGE" -U - file file="$tmp/target" --run "qemu-img convert -n -f raw '$tmp/src' -O raw \"\$nbd\""
cmp "$tmp/src" "$tmp/target" || fail "qemu-img convert into the file plugin differs"
"$NBDCAGE" -U - file "$tmp/target" --run "qemu-img compare -f raw -F raw '$tmp/src' \"\$nbd\"" || fail "compare"

# A read-only file is served read-only.
chmod 0444 "$tmp/src"
if [ "$(id -u)" != 0 ]; then
  out=$("$NBDCAGE" -U - file "$tmp/src" --run 'nbdinfo "$uri"')
  echo "$out" | grep -q 'is_read_only: true' || fail "read-only file served writable"
fi
echo PASS
