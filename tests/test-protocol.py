#!/usr/bin/python3
"""Raw-socket NBD conformance checks against the real nbdcage binary.

Each check drives the wire by hand (no client library), so that malformed
and unusual input can be sent: the checklist in the project's protocol
notes, section 4.  The server must answer as the protocol prescribes and
never crash: after every check, a fresh well-formed connection must work.
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


checks = []


def check(fn):
    checks.append(fn)
    return fn


@check
def greeting_flags(sock):
    c = Conn(sock)
    magic, opt, flags = struct.unpack(">QQH", c.recv(18))
    assert flags & 1, "FIXED_NEWSTYLE not set"
    assert flags & ~3 == 0, "unknown handshake flag bits"


@check
def unknown_client_flag_closes(sock):
    c = Conn(sock)
    c.greeting(cflags=3 | (1 << 31))
    assert c.closed(), "server kept a client with unknown flags"


@check
def unknown_option_is_unsup_and_stream_stays_in_sync(sock):
    c = Conn(sock)
    c.greeting()
    c.option(0x7654321, b"abcd")
    opt, typ, _ = c.reply()
    assert (opt, typ) == (0x7654321, ERR_UNSUP), (opt, typ)
    c.option(3)  # LIST
    rs = c.replies_until_final()
    assert rs[-1][1] == ACK and any(r[1] == SERVER for r in rs)


@check
def bad_option_magic_closes(sock):
    c = Conn(sock)
    c.greeting()
    c.s.sendall(struct.pack(">QII", 0x1234, 3, 0))
    assert c.closed()


@check
def huge_option_length_does_not_allocate(sock):
    c = Conn(sock)
    c.greeting()
    c.s.sendall(struct.pack(">QII", IHAVEOPT, 6, 0xFFFFFFFF) + b"x" * 1000)
    c.s.shutdown(socket.SHUT_WR)  # the server must not wait for 4 GiB forever
    assert c.closed()


@check
def list_with_data_is_invalid_and_connection_survives(sock):
    c = Conn(sock)
    c.greeting()
    c.option(3, b"xy")
    assert c.reply()[1] == ERR_INVALID
    c.go()


@check
def abort_is_acked_even_with_junk(sock):
    c = Conn(sock)
    c.greeting()
    c.option(2, b"junk")
    assert c.reply()[1] == ACK
    assert c.closed()


@check
def abort_and_vanish(sock):
    c = Conn(sock)
    c.greeting()
    c.option(2)
    c.s.close()


@check
def info_without_requests_still_sends_export(sock):
    c = Conn(sock)
    c.greeting()
    c.option(6, struct.pack(">IH", 0, 0))
    rs = c.replies_until_final()
    assert rs[-1][1] == ACK
    exports = [r for r in rs if r[1] == INFO and struct.unpack(">H", r[2][:2])[0] == 0]
    assert len(exports) == 1 and len(exports[0][2]) == 12
    size, flags = struct.unpack(">QH", exports[0][2][2:])
    assert size == SIZE and flags & 1


@check
def info_then_go_agree_and_unknown_info_ignored(sock):
    c = Conn(sock)
    c.greeting()
    c.option(8)
    c.reply()
    c.option(6, struct.pack(">IHHH", 0, 2, 0x7777, 3))
    info = [r[2] for r in c.replies_until_final() if r[1] == INFO]
    rs = c.go(infos=(0x7777, 3), sr=False)
    go = [r[2] for r in rs if r[1] == INFO]
    assert info == go, (info, go)
    bs = [p for p in go if struct.unpack(">H", p[:2])[0] == 3]
    assert len(bs) == 1 and len(bs[0]) == 14
    mn, pref, mx = struct.unpack(">III", bs[0][2:])
    assert mn & (mn - 1) == 0 and mn <= 65536 and pref & (pref - 1) == 0 and pref >= max(mn, 512) and mx >= pref


@check
def go_with_bad_name_length_is_invalid_then_go_works(sock):
    c = Conn(sock)
    c.greeting()
    c.option(7, struct.pack(">IH", 100, 0))
    assert c.reply()[1] == ERR_INVALID
    c.option(7, b"\x00\x00")
    assert c.reply()[1] == ERR_INVALID
    c.go()
    c.request(0, 0, 512, cookie=5)
    flags, typ, cookie, data = c.chunk()
    assert cookie == 5


@check
def no_bytes_after_go_ack(sock):
    c = Conn(sock)
    c.greeting(cflags=1)  # no NO_ZEROES
    c.go(sr=False)
    c.s.settimeout(0.3)
    try:
        extra = c.s.recv(1)
        assert False, f"unexpected bytes after GO: {extra!r}"
    except socket.timeout:
        pass


@check
def export_name_without_no_zeroes_pads_124_bytes(sock):
    c = Conn(sock)
    c.greeting(cflags=1)
    c.option(1, b"")
    size, flags = struct.unpack(">QH", c.recv(10))
    assert size == SIZE
    assert c.recv(124) == b"\0" * 124
    c.request(0, 0, 4, cookie=0xDEADBEEFCAFEBABE)
    err, cookie = c.simple_reply()
    assert err == 0 and cookie == 0xDEADBEEFCAFEBABE and c.recv(4) == b"\0" * 4


@check
def export_name_with_no_zeroes_is_10_bytes(sock):
    c = Conn(sock)
    c.greeting(cflags=3)
    c.option(1, b"")
    size, flags = struct.unpack(">QH", c.recv(10))
    c.request(0, 0, 4, cookie=9)
    assert c.simple_reply() == (0, 9)


@check
def structured_reply_with_data_invalid_and_twice_ok(sock):
    c = Conn(sock)
    c.greeting()
    c.option(8, b"x")
    assert c.reply()[1] == ERR_INVALID
    c.option(8)
    assert c.reply()[1] == ACK
    c.option(8)
    assert c.reply()[1] in (ACK, ERR_INVALID)


@check
def meta_contexts(sock):
    c = Conn(sock)
    c.greeting()
    q = b"base:allocation"
    c.option(10, struct.pack(">IIi", 0, 1, len(q)) + q)
    assert c.reply()[1] == ERR_INVALID, "SET before structured replies"
    c.option(9, struct.pack(">II", 0, 0))
    rs = c.replies_until_final()
    assert [r[2][4:] for r in rs if r[1] == META] == [q]
    c.option(9, struct.pack(">III", 0, 1, 5) + b"base:")
    rs = c.replies_until_final()
    assert [r[2][4:] for r in rs if r[1] == META] == [q]
    c.option(9, struct.pack(">III", 0, 1, 50) + b"base:")
    assert c.reply()[1] == ERR_INVALID
    c.option(9, struct.pack(">III", 0, 1, 12) + b"nosuchns:foo")
    rs = c.replies_until_final()
    assert len(rs) == 1 and rs[0][1] == ACK


@check
def block_status_without_context_is_einval(sock):
    c = Conn(sock)
    c.greeting()
    c.go()
    c.request(7, 0, 4096)
    flags, typ, cookie, data = c.chunk()
    assert typ == 32769 and struct.unpack(">I", data[:4])[0] == 22


@check
def context_for_another_export_is_not_selected(sock):
    c = Conn(sock)
    c.greeting()
    c.option(8)
    c.reply()
    q = b"base:allocation"
    c.option(10, struct.pack(">I", 1) + b"A" + struct.pack(">II", 1, len(q)) + q)
    c.replies_until_final()
    c.go(sr=False)
    c.request(7, 0, 4096)
    flags, typ, cookie, data = c.chunk()
    assert typ == 32769


@check
def block_status_with_context(sock):
    c = Conn(sock)
    c.greeting()
    c.go(meta=True)
    c.request(7, 0, SIZE, cookie=3)
    flags, typ, cookie, data = c.chunk()
    assert typ == 5 and flags & 1 and cookie == 3
    ctx = struct.unpack(">I", data[:4])[0]
    extents = [struct.unpack(">II", data[i:i + 8]) for i in range(4, len(data), 8)]
    assert extents and all(l > 0 for l, f in extents)
    assert sum(l for l, f in extents[:-1]) < SIZE
    c.request(7, 0, SIZE, flags=8, cookie=4)  # REQ_ONE
    flags, typ, cookie, data = c.chunk()
    assert len(data) == 12 and struct.unpack(">I", data[4:8])[0] <= SIZE


@check
def starttls_and_extended_headers_refused_politely(sock):
    c = Conn(sock)
    c.greeting()
    c.option(5)
    assert c.reply()[1] in (ERR_POLICY, ERR_UNSUP)
    c.option(11)
    assert c.reply()[1] == ERR_UNSUP
    c.go()


@check
def long_export_names(sock):
    c = Conn(sock)
    c.greeting()
    n = b"x" * 4097
    c.option(7, struct.pack(">I", len(n)) + n + b"\0\0")
    assert c.reply()[1] == ERR_INVALID
    c2 = Conn(sock)
    c2.greeting()
    c2.option(1, n)
    assert c2.closed()


@check
def many_options_then_disconnect_or_answer(sock):
    c = Conn(sock)
    c.greeting()
    try:
        for i in range(1000):
            c.option(0x1000 + i)
            assert c.reply()[1] == ERR_UNSUP
    except (Closed, ConnectionResetError, BrokenPipeError):
        pass  # DoS protection is allowed


@check
def close_mid_option(sock):
    c = Conn(sock)
    c.greeting()
    c.s.sendall(struct.pack(">QI", IHAVEOPT, 7))
    c.s.close()
    c = Conn(sock)
    c.greeting()
    c.s.sendall(struct.pack(">QII", IHAVEOPT, 7, 100) + b"abc")
    c.s.close()


@check
def simple_read_and_cookie(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    c.request(1, 4096, 8, payload=b"ABCDEFGH", cookie=1)
    assert c.simple_reply() == (0, 1)
    c.request(0, 4096, 8, cookie=0xDEADBEEFCAFEBABE)
    assert c.simple_reply() == (0, 0xDEADBEEFCAFEBABE)
    assert c.recv(8) == b"ABCDEFGH"


@check
def structured_read_chunks(sock):
    c = Conn(sock)
    c.greeting()
    c.go()
    c.request(1, 8192, 4, payload=b"WXYZ")
    assert c.simple_reply()[0] == 0
    c.request(0, 8190, 8, cookie=2)
    flags, typ, cookie, data = c.chunk()
    assert flags & 1 and cookie == 2 and typ == 1
    off = struct.unpack(">Q", data[:8])[0]
    assert off == 8190 and data[8:] == b"\0\0WXYZ\0\0"
    c.request(0, 65536, 4096, cookie=3)  # never written: a hole
    flags, typ, cookie, data = c.chunk()
    assert flags & 1 and cookie == 3
    if typ == 2:
        assert struct.unpack(">QI", data) == (65536, 4096)
    else:
        assert typ == 1 and data[8:] == b"\0" * 4096


@check
def read_past_end_is_error_chunk(sock):
    c = Conn(sock)
    c.greeting()
    c.go()
    c.request(0, SIZE - 512, 1024, cookie=7)
    flags, typ, cookie, data = c.chunk()
    assert typ == 32769 and len(data) >= 6 and struct.unpack(">I", data[:4])[0] == 22 and cookie == 7
    c.request(0, 0, 512, cookie=8)
    assert c.chunk()[2] == 8


@check
def write_past_end_is_enospc_and_payload_drained(sock):
    c = Conn(sock)
    c.greeting()
    c.go()
    c.request(1, SIZE - 512, 1024, payload=b"q" * 1024, cookie=1)
    assert c.simple_reply() == (28, 1)
    c.request(0, 0, 16, cookie=2)
    assert c.chunk()[2] == 2


@check
def write_with_unknown_flag_is_einval_and_drained(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    c.request(1, 0, 512, flags=0x8000, payload=b"z" * 512, cookie=1)
    assert c.simple_reply() == (22, 1)
    c.request(0, 0, 512, cookie=2)
    assert c.simple_reply() == (0, 2)
    assert c.recv(512) != b"z" * 512


@check
def unknown_command_and_inapplicable_flags(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    c.request(42, 0, 0, cookie=1)
    assert c.simple_reply() == (22, 1)
    c.request(0, 0, 512, flags=8, cookie=2)  # REQ_ONE on READ
    assert c.simple_reply() == (22, 2)
    c.request(0, 0, 512, flags=2, cookie=3)  # NO_HOLE on READ
    assert c.simple_reply() == (22, 3)


@check
def zero_length_and_wrapping_and_huge_requests(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    for typ in (0, 1, 4):
        c.request(typ, 0, 0, cookie=10 + typ)
        err, cookie = c.simple_reply()  # any answer, but no disconnect
        assert cookie == 10 + typ
    c.request(0, 2**64 - 512, 1024, cookie=20)
    assert c.simple_reply() == (22, 20)
    c.request(0, 0, 0xFFFFFFFF, cookie=21)
    assert c.simple_reply()[0] in (22, 75, 12)


@check
def oversized_write_is_drained_or_disconnected(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    n = (64 << 20) + 1
    c.request(1, 0, n, cookie=1)
    chunk = b"\0" * (1 << 20)
    sent = 0
    try:
        while sent < n:
            k = min(len(chunk), n - sent)
            c.s.sendall(chunk[:k])
            sent += k
        err, cookie = c.simple_reply()
        assert err != 0 and cookie == 1
    except (Closed, BrokenPipeError, ConnectionResetError):
        pass


@check
def flush_rules(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    c.request(3, 0, 0, cookie=1)
    assert c.simple_reply() == (0, 1)
    c.request(3, 512, 0, cookie=2)
    assert c.simple_reply() == (22, 2)


@check
def cache_and_fast_zero(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    c.request(5, 0, 4096, cookie=1)
    assert c.simple_reply()[1] == 1
    c.request(6, 0, 4096, flags=16, cookie=2)
    err, cookie = c.simple_reply()
    assert cookie == 2 and err in (0, 95)


@check
def pipelined_requests_then_disc(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    reqs = b""
    for i in range(64):
        if i % 2:
            reqs += struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, i, i * 512, 512) + bytes([i]) * 512
        else:
            reqs += struct.pack(">IHHQQI", REQ_MAGIC, 0, 0, i, 0, 4096)
    reqs += struct.pack(">IHHQQI", REQ_MAGIC, 0, 2, 999, 0, 0)
    c.s.sendall(reqs)
    seen = set()
    for _ in range(64):
        err, cookie = c.simple_reply()
        assert err == 0 and cookie not in seen
        seen.add(cookie)
        if cookie % 2 == 0:
            c.recv(4096)
    assert seen == set(range(64))
    assert c.closed(), "nothing may follow DISC's outstanding replies"


@check
def whole_disk_write_then_read_in_one_request(sock):
    # A reply far larger than the socket buffer leaves in many pieces.
    data = os.urandom(SIZE)
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    c.request(1, 0, SIZE, payload=data, cookie=1)
    assert c.simple_reply() == (0, 1)
    c.request(0, 0, SIZE, cookie=2)
    assert c.simple_reply() == (0, 2)
    assert c.recv(SIZE) == data
    c2 = Conn(sock)
    c2.greeting()
    c2.go()
    c2.request(0, 0, SIZE, flags=4, cookie=3)  # DF: exactly one data chunk
    flags, typ, cookie, payload = c2.chunk()
    assert flags & 1 and typ == 1 and cookie == 3 and payload[8:] == data


@check
def many_writes_sent_before_any_reply_is_read(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    block = b"w" * 65536
    reqs = b"".join(struct.pack(">IHHQQI", REQ_MAGIC, 0, 1, i, (i % 16) * 65536, 65536) + block
                    for i in range(300))
    c.s.sendall(reqs)  # 19 MiB before reading a single reply
    cookies = sorted(c.simple_reply()[1] for _ in range(300))
    assert cookies == list(range(300))


@check
def bad_request_magic_hangs_up(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    c.s.sendall(struct.pack(">IHHQQI", 0xDEADBEEF, 0, 0, 1, 0, 512))
    assert c.closed()


@check
def close_mid_write_payload(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    c.request(1, 0, 4096, payload=b"a" * 100)
    c.s.close()


@check
def half_close_with_requests_outstanding(sock):
    c = Conn(sock)
    c.greeting()
    c.go(sr=False)
    for i in range(4):
        c.request(0, 0, 512, cookie=i)
    c.s.shutdown(socket.SHUT_WR)
    got = 0
    try:
        for i in range(4):
            err, cookie = c.simple_reply()
            c.recv(512)
            got += 1
    except Closed:
        pass


@check
def random_garbage(sock):
    for i in range(20):
        c = Conn(sock)
        c.recv(18)
        try:
            c.s.sendall(os.urandom(65536))
        except (BrokenPipeError, ConnectionResetError):
            pass
        c.s.close()


def healthy(sock):
    c = Conn(sock)
    c.greeting()
    c.go()
    c.request(0, 0, 512, cookie=77)
    return c.chunk()[2] == 77


def main():
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


if __name__ == "__main__":
    sys.exit(main())
