#!/bin/sh
# -D NAME.FLAG=N sets the plugin's NAME_debug_FLAG variable inside the
# plugin host (nbdkit's syntax): the extra debug output appears; an unknown
# flag is a warning; a malformed one is a command-line error.
. "$(dirname "$0")/functions.sh"
data=${NBDKIT_PLUGINDIR:?}/nbdkit-data-plugin.so
[ -f "$data" ] || { echo "SKIP: Debian's data plugin is not installed"; exit 77; }

"$NBDCAGE" -v -D data.AST=1 -U - "$data" '1 2 3' --run true 2> "$tmp/on"
grep -q 'BEGIN AST' "$tmp/on" || { cat "$tmp/on"; fail "-D data.AST=1 had no effect"; }
"$NBDCAGE" -v -U - "$data" '1 2 3' --run true 2> "$tmp/off"
if grep -q 'BEGIN AST' "$tmp/off"; then fail "AST printed without -D"; fi

"$NBDCAGE" -D data.nosuch=1 -U - "$data" '1' --run 'nbdinfo --size "$uri"' > "$tmp/size" 2> "$tmp/warn"
grep -q 'warning: -D data.nosuch: data does not contain a global variable called data_debug_nosuch' "$tmp/warn" \
  || { cat "$tmp/warn"; fail "no warning for an unknown flag"; }
[ "$(cat "$tmp/size")" = 1 ] || fail "an unknown flag stopped the server"

for bad in data data.=1 data.AST .AST=1 data.AST=x; do
  set +e
  "$NBDCAGE" -D "$bad" -U - "$data" '1' --run true 2> "$tmp/err"
  status=$?
  set -e
  [ $status -eq 1 ] || fail "-D $bad: exit $status"
  grep -q 'must have the format NAME.FLAG=N' "$tmp/err" || { cat "$tmp/err"; fail "-D $bad: message"; }
done
echo PASS
