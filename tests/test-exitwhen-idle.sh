#!/bin/sh
# exitwhen with no client connected: the event is noticed by polling
# (exit-when-poll=SECS) and nbdcage exits 0 within about one period.
# Covers exit-when-file-created and exit-when-file-deleted.
. "$(dirname "$0")/functions.sh"
requires nbdinfo

start_nbdcage --filter=exitwhen memory 1M exit-when-file-created="$tmp/stop" exit-when-poll=1
nbdinfo --size "$uri" >/dev/null || fail "does not serve before the event"
touch "$tmp/stop"
expect_exit 10 0

touch "$tmp/keep"
start_nbdcage --filter=exitwhen memory 1M exit-when-file-deleted="$tmp/keep" exit-when-poll=1
nbdinfo --size "$uri" >/dev/null || fail "does not serve before the deletion"
kill -0 "$pid" || fail "exited while the file was there"
rm "$tmp/keep"
expect_exit 10 0

# A file under a directory that goes away counts as deleted too.
mkdir "$tmp/dir" && touch "$tmp/dir/keep"
start_nbdcage --filter=exitwhen memory 1M exit-when-file-deleted="$tmp/dir/keep" exit-when-poll=1
rm -r "$tmp/dir"
expect_exit 10 0

# Bad values are startup errors.
for bad in exit-when-poll=0 exit-when-poll=soon exit-when-file-created=; do
  if "$NBDCAGE" -f -U "$tmp/bad" --filter=exitwhen memory 1M "$bad" 2>"$tmp/err"; then fail "$bad accepted"; fi
  grep -q "^nbdcage: exitwhen: exit-when-" "$tmp/err" || fail "$bad: no clear error: $(cat "$tmp/err")"
done
echo PASS
