#!/bin/sh
# With -s the NBD stream is nbdcage's stdin/stdout, and the plugin host
# never shares them: a plugin that writes junk to stdout and reads stdin
# (tests/plugins/noisy.c) leaves the stream intact.
. "$(dirname "$0")/functions.sh"
requires nbdsh
plugin=${NBDCAGE_BUILD:?}/tests/plugins/noisy.so
out=$(nbdsh -c "
import os
h.connect_command([os.environ['NBDCAGE'], '-s', '--exit-with-parent', '$plugin'])
assert h.pread(4096, 0) == b'\\xab' * 4096
assert h.pread(512, 1048576 - 512) == b'\\xab' * 512
print(h.get_size())" 2> "$tmp/err")
[ "$out" = 1048576 ] || { cat "$tmp/err"; fail "the plugin's stdout corrupted the -s stream: $out"; }
grep -q 'JUNK FROM PREAD' "$tmp/err" || fail "the plugin's output should reach stderr (the log)"
echo PASS
