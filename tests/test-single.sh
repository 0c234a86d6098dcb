#!/bin/sh
# -s: one connection on stdin/stdout; exits 0 at EOF; the plugin's stdout
# never reaches the protocol stream.
. "$(dirname "$0")/functions.sh"
requires nbdsh

"$NBDCAGE" -s memory 1M < /dev/null > "$tmp/out" || fail "-s with empty stdin should exit 0"
# The greeting was written, then EOF ended the connection.
head -c 8 "$tmp/out" | grep -q NBDMAGIC || fail "no greeting on stdout"

out=$(nbdsh -c '
import os
h.connect_command([os.environ["NBDCAGE"], "-s", "--exit-with-parent", "memory", "size=1M"])
h.pwrite(b"abc" * 100, 1000)
assert h.pread(300, 1000) == b"abc" * 100
print(h.get_size())')
[ "$out" = 1048576 ] || fail "connect_command: $out"
echo PASS
