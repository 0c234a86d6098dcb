#!/bin/sh
# --filter: each KEY=VALUE goes to the first filter that takes KEY, the rest
# (and bare VALUEs) to the plugin; unknown filters and a filter's key given
# without its filter are clear startup errors; filters stack.
. "$(dirname "$0")/functions.sh"
requires nbdinfo

# The filter takes exit-when-*; memory would refuse them.
start_nbdcage --filter=exitwhen memory size=1M exit-when-file-created="$tmp/stop" exit-when-poll=1
[ "$(nbdinfo --size "$uri")" = 1048576 ] || fail "the plugin did not get size=1M"
kill "$pid"; expect_exit 10 0

# Without the filter the plugin gets the key, and says it does not know it.
if "$NBDCAGE" -f -U "$tmp/sock" memory 1M exit-when-poll=1 2>"$tmp/err"; then fail "the plugin took exit-when-poll"; fi
grep -q "unknown parameter 'exit-when-poll'" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"

if "$NBDCAGE" -f -U "$tmp/sock" --filter=nosuch memory 1M 2>"$tmp/err"; then fail "an unknown filter was accepted"; fi
grep -q "unknown filter 'nosuch'" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
[ ! -e "$tmp/sock" ] || fail "a socket was made"

# nbdkit's way of probing for a filter: FILTER null --version.
"$NBDCAGE" --filter=exitlast --filter=readahead null --version >"$tmp/version" || fail "--version with filters"
sed -n 2,3p "$tmp/version" | cut -d' ' -f1 | tr '\n' ' ' | grep -qx 'exitlast readahead ' ||
  fail "--version does not list the filters: $(cat "$tmp/version")"
sed -n 4p "$tmp/version" | grep -q '^null ' || fail "--version does not end with the plugin: $(cat "$tmp/version")"
if "$NBDCAGE" --filter=nosuch null --version >/dev/null 2>&1; then fail "--version with an unknown filter succeeded"; fi

# Two filters: both act (exitwhen's file appears; exitlast would also end it).
start_nbdcage --filter=exitlast --filter=exitwhen memory 1M exit-when-file-created="$tmp/stop2" exit-when-poll=1
touch "$tmp/stop2"
expect_exit 10 0
start_nbdcage --filter=exitlast --filter=exitwhen memory 1M exit-when-file-created="$tmp/stop3" exit-when-poll=1
nbdinfo --size "$uri" >/dev/null
expect_exit 10 0

# The same filter twice is allowed (as in nbdkit); the first takes the keys.
start_nbdcage --filter=exitwhen --filter=exitwhen memory 1M exit-when-file-created="$tmp/stop4" exit-when-poll=1
touch "$tmp/stop4"
expect_exit 10 0
echo PASS
