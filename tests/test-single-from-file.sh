#!/bin/sh
# -s reading a recorded session from a file (not a socket): fixed newstyle,
# EXPORT_NAME, a 512-byte write, a read of it, DISC; the replies come out on
# stdout and nbdcage exits 0 at the end of the file.
. "$(dirname "$0")/functions.sh"
/usr/bin/python3 - "$tmp/session" <<'PY'
import struct, sys
req = lambda t, c, off, n: struct.pack(">IHHQQI", 0x25609513, 0, t, c, off, n)
data = bytes(range(256)) * 2
s = struct.pack(">I", 3)                                            # client flags
s += struct.pack(">QII", 0x49484156454F5054, 1, 0)                  # EXPORT_NAME ""
s += req(1, 1, 4096, 512) + data + req(0, 2, 4096, 512) + req(2, 3, 0, 0)
open(sys.argv[1], "wb").write(s)
PY
# One worker: the read comes after the write only then (a server may
# serve requests in flight in any order, and with more workers it does).
"$NBDCAGE" -s -t 1 memory 1M < "$tmp/session" > "$tmp/reply" || fail "-s from a file failed"
/usr/bin/python3 - "$tmp/reply" <<'PY' || fail "unexpected reply stream"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:16] == b"NBDMAGICIHAVEOPT", "no greeting"
pos = 18 + 10                                       # greeting, then size + flags (NO_ZEROES)
replies = {}
while pos < len(b):
    magic, err, cookie = struct.unpack(">IIQ", b[pos:pos + 16]); pos += 16
    assert magic == 0x67446698 and err == 0, (magic, err)
    if cookie == 2:
        replies[2] = b[pos:pos + 512]; pos += 512
    else:
        replies[cookie] = b""
assert replies[2] == bytes(range(256)) * 2 and 1 in replies, replies.keys()
PY
echo PASS
