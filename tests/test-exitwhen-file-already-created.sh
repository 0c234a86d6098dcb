#!/bin/sh
# exitwhen: an event that has already happened when nbdcage starts makes it
# exit 0 at once: before listening, before a --run command runs, before a
# daemon's parent returns (no pidfile, no socket).
. "$(dirname "$0")/functions.sh"
touch "$tmp/stop"

"$NBDCAGE" -f -U - --filter=exitwhen memory 1M exit-when-file-created="$tmp/stop" \
  --run "touch $tmp/ran" || fail "captive: exit status $?"
[ ! -e "$tmp/ran" ] || fail "the --run command ran"

"$NBDCAGE" -P "$tmp/pid" -U "$tmp/sock" --filter=exitwhen memory 1M exit-when-file-created="$tmp/stop" ||
  fail "daemon: exit status $?"
[ ! -e "$tmp/pid" ] || fail "a pidfile was written"
[ ! -e "$tmp/sock" ] || fail "a socket was made"

# A relative file name is taken from the directory nbdcage started in.
(cd "$tmp" && "$NBDCAGE" -f -U "$tmp/sock" --filter=exitwhen memory 1M exit-when-file-created=stop) ||
  fail "relative name: exit status $?"

# The same server without the file serves (so the above was the event).
rm "$tmp/stop"
"$NBDCAGE" -U - --filter=exitwhen memory 1M exit-when-file-created="$tmp/stop" \
  --run "touch $tmp/ran" || fail "no event: exit status $?"
[ -e "$tmp/ran" ] || fail "without the event the --run command did not run"
echo PASS
