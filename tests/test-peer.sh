#!/bin/sh
# A plugin learns who its client is, as in nbdkit: nbdkit_peer_name gives
# the client's address (AF_UNIX or AF_INET/AF_INET6), nbdkit_peer_pid/uid/gid
# its credentials on a Unix socket (and fail over TCP), and
# nbdkit_export_name the name it asked for; all from the plugin's process.
. "$(dirname "$0")/functions.sh"
requires nbdsh ss
plugin=${NBDCAGE_BUILD:?}/tests/plugins/peer.so

start_nbdcage "$plugin"
nbdsh -u "nbd+unix:///disk1?socket=$sock" -c '
import os
text = bytes(h.pread(256, 0)).split(b"\n")[0].decode()
expect = "export=disk1 family=1 pid=%d uid=%d gid=%d" % (os.getpid(), os.getuid(), os.getgid())
assert text == expect, (text, expect)
' || fail "Unix socket: wrong peer"

port=$(( 50000 + $$ % 10000 ))
while ss -ltn | grep -q ":$port "; do port=$((port + 1)); done
"$NBDCAGE" -f -p "$port" -i 127.0.0.1 "$plugin" &
tcp=$!
cleanup_fn "kill $tcp 2>/dev/null"
poll 30 sh -c "ss -ltn | grep -q ':$port '" || fail "no TCP listener"
nbdsh -u "nbd://127.0.0.1:$port/" -c '
text = bytes(h.pread(256, 0)).split(b"\n")[0].decode()
assert text == "export= family=2 pid=-1 uid=-1 gid=-1", text
' || fail "TCP: wrong peer"
echo PASS
