#!/bin/sh
# After `meson install` (here into a DESTDIR), the installed nbdcage finds
# its installed plugin host and plugins (not the build tree's) and serves.
. "$(dirname "$0")/functions.sh"
requires meson nbdinfo
meson install -C "${NBDCAGE_BUILD:?}" --destdir "$tmp/dest" --no-rebuild --quiet >/dev/null
bin=$(find "$tmp/dest" -path '*/bin/nbdcage' -type f)
[ -x "$bin" ] || fail "no installed nbdcage"
size=$("$bin" -v -U - memory 1M --run 'nbdinfo --size "$uri"' 2> "$tmp/log")
[ "$size" = 1048576 ] || { cat "$tmp/log"; fail "installed nbdcage did not serve"; }
grep -q "plugin host [0-9]* ($tmp/dest/.*/nbdcage-pluginhost)" "$tmp/log" \
  || { cat "$tmp/log"; fail "the installed nbdcage did not use the installed plugin host"; }
for page in $(cd "${NBDCAGE_SOURCE:?}/man" && ls *.1); do
  find "$tmp/dest" -name "$page" | grep -q . || fail "man page $page not installed"
done
find "$tmp/dest" -path '*/doc/nbdcage/examples/nbdcage.socket' | grep -q . || fail "example units not installed"
find "$tmp/dest" -name nbdcage-plugin.h | grep -q . || fail "plugin header not installed"
echo PASS
