# Helpers shared by the black-box tests.  Source it; it sets -e.
set -e
set -u

: "${NBDCAGE:?NBDCAGE must name the nbdcage binary under test}"
# Debian's python3-libnbd (nbdsh) needs the system python, not pyenv's.
PATH=/usr/bin:/bin:$PATH
export PATH
# Python snippets import the helpers beside this file (procstate.py).
PYTHONPATH=$(cd "$(dirname "$0")" && pwd)${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH

tmp=$(mktemp -d /tmp/nbdcage-test.XXXXXX)
_cleanups=""
cleanup_fn() { _cleanups="$* ; $_cleanups"; }
_run_cleanups() {
  status=$?
  eval "$_cleanups" >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit $status
}
trap _run_cleanups EXIT INT TERM

# Exit 77 (skip) unless every command exists.
requires() {
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c is not installed"; exit 77; }
  done
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# poll SECONDS CMD...: runs CMD until it succeeds or the deadline passes.
poll() {
  _deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$_deadline" ] || return 1
    sleep 0.05
  done
}

# Starts nbdcage in the background on a private socket: sets $sock and $pid.
# Usage: start_nbdcage PLUGIN ARGS...
start_nbdcage() {
  sock=$tmp/sock
  "$NBDCAGE" -f -U "$sock" "$@" &
  pid=$!
  cleanup_fn "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
  poll 30 test -S "$sock" || fail "nbdcage did not start"
  uri="nbd+unix://?socket=$sock"
}

# The pids of nbdcage's plugin hosts: children of $1, or in a PID
# namespace the child of the namespace's reaper that is.
host_pids() {
  for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    case "$(cat /proc/"$p"/comm 2>/dev/null)" in
      nbdcage-plugin*) echo "$p" ;;
      nbdcage-reaper) host_pids "$p" ;;
    esac
  done
}

# expect_exit SECONDS STATUS: nbdcage ($pid, our child) ends within SECONDS
# with STATUS.
expect_exit() {
  poll "$1" sh -c "! kill -0 $pid 2>/dev/null" || fail "nbdcage still runs after $1 s"
  set +e; wait "$pid"; _status=$?; set -e
  [ "$_status" -eq "$2" ] || fail "nbdcage exited with $_status, expected $2"
}
