"""Raw-socket NBD helpers for the conformance checks (test-protocol-*.py).

A Conn speaks the wire by hand (no client library), so that malformed and
unusual input can be sent.  run(checks) starts the real nbdcage binary
(memory plugin, 1 MiB), runs each check, and after every check requires a
fresh well-formed connection to work and the server to be alive.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x0003E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
CHUNK_MAGIC = 0x668E33EF
ERR = 1 << 31
ACK, SERVER, INFO, META = 1, 2, 3, 4
ERR_UNSUP, ERR_POLICY, ERR_INVALID, ERR_UNKNOWN = ERR | 1, ERR | 2, ERR | 3, ERR | 6
SIZE = 1 << 20


class Closed(Exception):
    pass


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(path)

    def recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise Closed()
            b += c
        return b

    def closed(self):
        """True when the server hung up (EOF) without sending more."""
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def greeting(self, cflags=3):
        magic, opt, flags = struct.unpack(">QQH", self.recv(18))
        assert magic == NBDMAGIC and opt == IHAVEOPT, "bad greeting"
        self.s.sendall(struct.pack(">I", cflags))
        return flags

    def option(self, opt, data=b""):
        self.s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)

    def reply(self):
        magic, opt, typ, length = struct.unpack(">QIII", self.recv(20))
        assert magic == REPLY_MAGIC, "bad option reply magic"
        return opt, typ, self.recv(length)

    def replies_until_final(self):
        out = []
        while True:
            r = self.reply()
            out.append(r)
            if r[1] == ACK or r[1] & ERR:
                return out

    def go(self, name=b"", infos=(), sr=True, meta=False):
        if sr:
            self.option(8)
            assert self.reply()[1] == ACK
        if meta:
            q = b"base:allocation"
            self.option(10, struct.pack(">I", len(name)) + name + struct.pack(">II", 1, len(q)) + q)
            rs = self.replies_until_final()
            assert rs[-1][1] == ACK
        self.option(7, struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) +
                    b"".join(struct.pack(">H", i) for i in infos))
        rs = self.replies_until_final()
        assert rs[-1][1] == ACK, f"GO failed: {rs[-1]}"
        return rs

    def request(self, typ, offset, length, flags=0, cookie=1, payload=b""):
        self.s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, flags, typ, cookie, offset, length) + payload)

    def simple_reply(self):
        magic, err, cookie = struct.unpack(">IIQ", self.recv(16))
        assert magic == SIMPLE_MAGIC, f"expected a simple reply, got magic {magic:#x}"
        return err, cookie

    def chunk(self):
        magic, flags, typ, cookie, length = struct.unpack(">IHHQI", self.recv(20))
        assert magic == CHUNK_MAGIC, f"expected a chunk, got magic {magic:#x}"
        return flags, typ, cookie, self.recv(length)




def make_registry():
    """A list of checks and a decorator that appends to it."""
    checks = []

    def check(fn):
        checks.append(fn)
        return fn

    return checks, check



def healthy(sock):
    c = Conn(sock)
    c.greeting()
    c.go()
    c.request(0, 0, 512, cookie=77)
    return c.chunk()[2] == 77


def run(checks):
    nbdcage = os.environ["NBDCAGE"]
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "sock")
        server = subprocess.Popen([nbdcage, "-f", "-U", sock, "memory", f"size={SIZE}"])
        try:
            deadline = time.time() + 30
            while not os.path.exists(sock):
                assert time.time() < deadline and server.poll() is None, "nbdcage did not start"
                time.sleep(0.02)
            failed = 0
            for fn in checks:
                try:
                    fn(sock)
                    ok = healthy(sock)
                    print(("PASS " if ok else "FAIL (server unhealthy afterwards) ") + fn.__name__)
                    failed += not ok
                except Exception as e:
                    print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
                    failed += 1
                if server.poll() is not None:
                    print(f"FAIL: nbdcage exited ({server.returncode}) after {fn.__name__}")
                    return 1
            return 1 if failed else 0
        finally:
            server.terminate()
            server.wait(timeout=30)
