#!/bin/sh
# The .socket + .service pair shipped in man/examples works: its socket
# and its command line, run the way systemd would (systemd-socket-activate),
# serve the disk.
. "$(dirname "$0")/functions.sh"
requires systemd-socket-activate nbdinfo
ex=${NBDCAGE_SOURCE:?}/man/examples
listen=$(sed -n 's/^ListenStream=//p' "$ex/nbdcage.socket")
exec_start=$(sed -n 's/^ExecStart=//p' "$ex/nbdcage.service")
[ -n "$listen" ] && [ -n "$exec_start" ] || fail "example units lack ListenStream or ExecStart"
grep -q '^Requires=nbdcage.socket' "$ex/nbdcage.service" || fail "the service does not require its socket"

# Same command line, with the test's binary and a private socket path.
cmd=$(echo "$exec_start" | sed "s|^/usr/local/bin/nbdcage|$NBDCAGE|")
# shellcheck disable=SC2086
systemd-socket-activate -l "$tmp/sock" $cmd > "$tmp/log" 2>&1 &
sa=$!
cleanup_fn "kill $sa 2>/dev/null"
poll 30 test -S "$tmp/sock" || fail "not listening"
size=$(nbdinfo --size "nbd+unix://?socket=$tmp/sock") || { cat "$tmp/log"; fail "not served"; }
[ "$size" = 1073741824 ] || fail "unexpected size $size"
echo PASS
