#!/usr/bin/python3
"""NBD conformance, handshake phase: raw-socket checks against the real
nbdcage binary (the project's protocol notes, section 4, items 1-32)."""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbdraw import *  # noqa: E402,F403

checks, check = make_registry()

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


if __name__ == "__main__":
    sys.exit(run(checks))
