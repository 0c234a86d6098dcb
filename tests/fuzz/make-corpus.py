#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz-server target into tests/fuzz/corpus/.

Each seed is what one client sends: a handshake, then (for most) requests.
Run it again after changing it; the files it writes are committed.  The
files named by a SHA-1 beside them are inputs libFuzzer found (merged with
-merge=1); they are committed too, so the suite replays them."""
import os
import struct

IHAVEOPT = 0x49484156454F5054
REQ_MAGIC = 0x25609513
OPT = dict(EXPORT_NAME=1, ABORT=2, LIST=3, INFO=6, GO=7, STRUCTURED_REPLY=8,
           LIST_META_CONTEXT=9, SET_META_CONTEXT=10, UNKNOWN=99)
CMD = dict(READ=0, WRITE=1, DISC=2, FLUSH=3, TRIM=4, CACHE=5, WRITE_ZEROES=6, BLOCK_STATUS=7)
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 1, 2, 4, 8, 16


def option(name, data=b""):
    return struct.pack(">QII", IHAVEOPT, OPT[name], len(data)) + data


def info_go(name, export=b"", items=()):
    data = struct.pack(">I", len(export)) + export + struct.pack(">H", len(items))
    data += b"".join(struct.pack(">H", i) for i in items)
    return option(name, data)


def meta(name, export=b"", queries=(b"base:allocation",)):
    data = struct.pack(">I", len(export)) + export + struct.pack(">I", len(queries))
    data += b"".join(struct.pack(">I", len(q)) + q for q in queries)
    return option(name, data)


def request(cmd, offset=0, length=0, flags=0, cookie=1, payload=b""):
    return struct.pack(">IHHQQI", REQ_MAGIC, flags, CMD[cmd], cookie, offset, length) + payload


def fixed(flags=3):
    return struct.pack(">I", flags)


SEEDS = {
    "structured-all-commands": fixed() + option("STRUCTURED_REPLY") + meta("SET_META_CONTEXT") +
        info_go("GO", items=(0, 1, 2, 3)) +
        request("WRITE", 0, 512, FUA, 1, b"\x5a" * 512) + request("READ", 0, 512, DF, 2) +
        request("READ", 4096, 4096, 0, 3) + request("BLOCK_STATUS", 0, 65536, 0, 4) +
        request("BLOCK_STATUS", 0, 4096, REQ_ONE, 5) + request("TRIM", 0, 4096, 0, 6) +
        request("WRITE_ZEROES", 8192, 4096, FAST_ZERO, 7) + request("WRITE_ZEROES", 8192, 4096, NO_HOLE, 8) +
        request("FLUSH", 0, 0, 0, 9) + request("CACHE", 0, 4096, 0, 10) + request("DISC"),
    "simple-replies": fixed() + info_go("GO") + request("WRITE", 512, 1024, 0, 1, b"\x01" * 1024) +
        request("READ", 0, 2048, 0, 2) + request("READ", (1 << 20) - 512, 512, 0, 3) + request("DISC"),
    "options": fixed() + option("LIST") + info_go("INFO", b"", (1, 2, 3)) + info_go("INFO", b"other") +
        meta("LIST_META_CONTEXT", b"", ()) + meta("LIST_META_CONTEXT", b"", (b"base:",)) +
        option("UNKNOWN", b"xyz") + option("STRUCTURED_REPLY", b"x") + option("ABORT"),
    "export-name": fixed(1) + option("EXPORT_NAME", b"") + request("READ", 0, 512) + request("DISC"),
    "oldest-client": fixed(0) + option("EXPORT_NAME", b"") + request("WRITE", 0, 4, 0, 1, b"abcd"),
    "bad-requests": fixed() + option("STRUCTURED_REPLY") + info_go("GO") +
        request("WRITE", 1 << 20, 512, 0, 1, b"\x00" * 512) + request("READ", 0, 0, 0, 2) +
        request("READ", 0, 1 << 20, 0, 3) + request("BLOCK_STATUS", 0, 512, 0, 4) +
        request("TRIM", 0, 512, FAST_ZERO, 5) + struct.pack(">I", 0xDEADBEEF) + b"\x00" * 24,
    "many-in-flight": fixed() + info_go("GO") +
        b"".join(request("READ", (i * 4096) % (1 << 20), 4096, 0, i) for i in range(300)) + request("DISC"),
    "long-option": fixed() + struct.pack(">QII", IHAVEOPT, OPT["INFO"], 2 << 20) + b"\x00" * 64,
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(here, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(SEEDS), here))
