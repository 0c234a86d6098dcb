#!/bin/sh
# --help and the man page document the same options; --version names us;
# --dump-config says where things are.
. "$(dirname "$0")/functions.sh"
man=${NBDCAGE_SOURCE:?}/man/nbdcage.1

"$NBDCAGE" --help > "$tmp/help"
"$NBDCAGE" --version | grep -q '^nbdcage [0-9]' || fail "--version"
"$NBDCAGE" -V | grep -q '^nbdcage [0-9]' || fail "-V"
grep -q '^Usage: nbdcage' "$tmp/help" || fail "--help has no usage line"

grep -o -- '--[a-z][a-z-]*' "$tmp/help" | sort -u > "$tmp/help-opts"
sed -n 's/\\-/-/g; s/\\fB//g; s/\\fR//g; /^\.B/p; /^\.TP/p; /^\.BI/p; /^\.BR/p' "$man" \
  | grep -o -- '--[a-z][a-z-]*' | sort -u > "$tmp/man-opts"
diff -u "$tmp/man-opts" "$tmp/help-opts" || fail "--help and nbdcage.1 disagree on the options"
[ "$(wc -l < "$tmp/help-opts")" -ge 12 ] || fail "too few options found"

# --dump-config: KEY=VALUE lines naming where things are.
"$NBDCAGE" --dump-config > "$tmp/config"
grep -q '^version=[0-9]' "$tmp/config" || fail "--dump-config: no version"
grep -q '^version_major=[0-9][0-9]*$' "$tmp/config" || fail "--dump-config: no version_major"
grep -q '^bindir=/' "$tmp/config" || fail "--dump-config: no bindir"
host=$(sed -n 's/^pluginhost=//p' "$tmp/config")
[ -x "$host" ] || fail "--dump-config: pluginhost=$host is not executable"
echo PASS
