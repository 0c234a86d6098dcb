#!/usr/bin/python3
"""NBD conformance, transmission phase: raw-socket checks against the real
nbdcage binary (the project's protocol notes, section 4, items 33-76)."""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbdraw import *  # noqa: E402,F403

checks, check = make_registry()

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


if __name__ == "__main__":
    sys.exit(run(checks))
