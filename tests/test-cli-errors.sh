#!/bin/sh
# A wrong command line exits 1 with one line naming the culprit, and starts
# nothing (no socket, no process left).
. "$(dirname "$0")/functions.sh"

check() {  # check DESCRIPTION PATTERN ARGS...
  what=$1 pattern=$2; shift 2
  set +e
  "$NBDCAGE" -f -U "$tmp/sock" "$@" > "$tmp/out" 2> "$tmp/err"
  status=$?
  set -e
  [ $status -eq 1 ] || fail "$what: exit status $status, expected 1"
  [ ! -s "$tmp/out" ] || fail "$what: wrote to stdout"
  [ "$(wc -l < "$tmp/err")" -eq 1 ] || { cat "$tmp/err"; fail "$what: not exactly one line"; }
  grep -q "$pattern" "$tmp/err" || { cat "$tmp/err"; fail "$what: message lacks '$pattern'"; }
  [ ! -e "$tmp/sock" ] || fail "$what: left a socket"
  cat "$tmp/err"
}

check "unknown option" "unrecognised option\|unrecognized option" --no-such-option memory 1M
check "unknown plugin" "unknown plugin 'nosuch'" nosuch
check "missing .so" "no such file" ./nosuch.so
check "missing file" "$tmp/missing" file "$tmp/missing"
check "missing size" "size" memory
check "bad size" "could not parse size" memory size=12Q
check "unknown key" "unknown parameter 'colour'" memory 1M colour=red
check "no plugin" "no plugin given"
check "-s with --run" "\-\-run cannot be used with -s" -s --run true memory 1M
check "bad threads" "threads" -t 2000 memory 1M
check "bad memory limit" "\-\-sandbox-memory must be a number" --sandbox-memory=12Q memory 1M
check "bad process limit" "\-\-sandbox-processes must be a number" --sandbox-processes=-1 memory 1M
check "memory limit past 64 bits" "\-\-sandbox-memory" --sandbox-memory=99999999999T memory 1M
if [ "$(id -u)" -eq 0 ]; then
  check "unknown sandbox user" "no user 'nosuchuser'" --sandbox-user=nosuchuser memory 1M
  check "sandbox user that is root" "say \-\-sandbox-user=root" --sandbox-user=0 memory 1M
fi
echo PASS
