#!/bin/sh
# --vsock listens on AF_VSOCK at the -p port and gives --run an
# nbd+vsock://1:PORT URI; where the kernel has vsock loopback, nbdinfo
# reads the disk through it.  Without AF_VSOCK: a clear error.
. "$(dirname "$0")/functions.sh"
port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))

if ! /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)' 2>/dev/null; then
  set +e
  "$NBDCAGE" --vsock -p "$port" memory 1M --run true 2> "$tmp/err"
  status=$?
  set -e
  [ $status -eq 1 ] && grep -q 'does not support AF_VSOCK' "$tmp/err" || fail "no clear error without AF_VSOCK"
  echo "PASS (no AF_VSOCK here: checked the error)"
  exit 0
fi

cat > "$tmp/probe.py" <<PY
import errno, socket, sys
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
try:
    s.bind((socket.VMADDR_CID_ANY, $port))
except OSError as e:
    sys.exit(0 if e.errno == errno.EADDRINUSE else 1)
sys.exit(1)  # the port was free: nbdcage is not listening on it
PY
"$NBDCAGE" --vsock -p "$port" memory 1M --run "echo \"\$uri\" > '$tmp/uri'; /usr/bin/python3 '$tmp/probe.py'" \
  || fail "nbdcage does not listen on vsock port $port"
[ "$(cat "$tmp/uri")" = "nbd+vsock://1:$port" ] || fail "uri: $(cat "$tmp/uri")"

# The disk through vsock loopback, where the kernel has it.
if timeout 5 "$NBDCAGE" --vsock -p "$port" memory 1M --run 'nbdinfo --size "$uri"' > "$tmp/size" 2>/dev/null; then
  [ "$(cat "$tmp/size")" = 1048576 ] || fail "wrong size over vsock"
else
  echo "note: no vsock loopback in this kernel; the data path was not exercised"
fi

set +e
"$NBDCAGE" --vsock -U "$tmp/s" memory 1M 2> "$tmp/err"; status=$?
set -e
[ $status -eq 1 ] && grep -q -- '--vsock cannot be used with -U' "$tmp/err" || fail "--vsock -U not refused"
echo PASS
