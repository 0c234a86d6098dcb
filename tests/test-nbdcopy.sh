#!/bin/sh
# nbdcopy round trip through the memory plugin: bytes in equal bytes out,
# including a sparse region in the middle.
. "$(dirname "$0")/functions.sh"
requires nbdcopy cmp

head -c 16M /dev/urandom > "$tmp/src"
truncate -s 48M "$tmp/src"                    # 32 MiB hole
head -c 4M /dev/urandom >> "$tmp/src"          # data after the hole
"$NBDCAGE" -U - memory 52M --run "nbdcopy '$tmp/src' \"\$uri\" && nbdcopy \"\$uri\" '$tmp/dst'"
cmp "$tmp/src" "$tmp/dst" || fail "copy differs"
# nbdcopy to null: reads everything.
"$NBDCAGE" -U - pattern 64M --run 'nbdcopy "$uri" null:' || fail "nbdcopy to null:"
echo PASS
