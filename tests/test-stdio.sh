#!/bin/sh
# With --run the command gets nbdcage's stdin and stdout (the plugin host
# gets neither); also with -f and when nbdcage would daemonize otherwise.
. "$(dirname "$0")/functions.sh"
out=$(printf 'line one\nline two\n' | "$NBDCAGE" -U - memory 1M --run 'read a; read b; echo "$b|$a"')
[ "$out" = "line two|line one" ] || fail "the command did not get stdin/stdout: $out"
out=$(echo piped | "$NBDCAGE" -f -U - memory 1M --run 'cat')
[ "$out" = piped ] || fail "-f: $out"
echo PASS
