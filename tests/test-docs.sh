#!/bin/sh
# Every plugin and every filter has its man page, every page renders
# without a groff warning, and nbdcage(1) lists every filter the binary has.
. "$(dirname "$0")/functions.sh"
requires groff
src=${NBDCAGE_SOURCE:?}
for d in "$src"/plugins/*/; do
  name=$(basename "$d")
  [ -f "$src/man/nbdcage-$name-plugin.1" ] || fail "plugin $name has no man/nbdcage-$name-plugin.1"
done
for d in "$src"/filters/*/; do
  name=$(basename "$d")
  [ -f "$src/man/nbdcage-$name-filter.1" ] || fail "filter $name has no man/nbdcage-$name-filter.1"
done
for page in "$src"/man/*.1; do
  groff -man -Tutf8 -ww -z "$page" 2>"$tmp/warn"
  [ ! -s "$tmp/warn" ] || fail "$(basename "$page"): $(cat "$tmp/warn")"
done
filters=$("$NBDCAGE" --help | sed -n 's/^Filters: \(.*\)\.$/\1/p' | tr -d ,)
[ -n "$filters" ] || fail "--help lists no filters"
for f in $filters; do
  [ -d "$src/filters/$f" ] || fail "--help lists $f, which has no folder"
  grep -q "^\.B $f\$" "$src/man/nbdcage.1" || fail "nbdcage(1) FILTERS does not list $f"
done
echo PASS
