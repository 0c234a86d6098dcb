#!/bin/sh
# nbdinfo sees the export nbdcage's memory plugin describes: size, flags,
# the base:allocation context, and the export list.
. "$(dirname "$0")/functions.sh"
requires nbdinfo

out=$("$NBDCAGE" -U - memory 1M --run 'nbdinfo "$uri"')
echo "$out"
echo "$out" | grep -q 'export-size: 1048576' || fail "wrong size"
echo "$out" | grep -q 'base:allocation' || fail "no base:allocation"
for f in can_flush can_fua can_multi_conn can_trim can_zero can_fast_zero can_df; do
  echo "$out" | grep -q "$f: true" || fail "$f should be true"
done
echo "$out" | grep -q 'is_read_only: false' || fail "should be writable"

# -r makes it read-only, and the write flags go away.
out=$("$NBDCAGE" -r -U - memory 1M --run 'nbdinfo "$uri"')
echo "$out" | grep -q 'is_read_only: true' || fail "-r not honoured"
echo "$out" | grep -q 'can_trim: false' || fail "trim on a read-only export"

# --list shows the default export.
out=$("$NBDCAGE" -U - memory 1M --run 'nbdinfo --list "$uri"')
echo "$out" | grep -q 'export=""' || fail "default export not listed"

# nbdinfo --can answers by exit code.
"$NBDCAGE" -U - memory 1M --run 'nbdinfo --can flush "$uri"' || fail "--can flush"
if "$NBDCAGE" -r -U - memory 1M --run 'nbdinfo --can trim "$uri"'; then fail "--can trim on -r"; fi
echo PASS
