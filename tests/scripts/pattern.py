# A read-only disk of 64 KiB whose byte at offset o is o % 251, for
# nbdkit's python plugin (API 2).  tests/test-drop-in.sh checks the bytes.
API_VERSION = 2


def open(readonly):
    return 1


def get_size(h):
    return 65536


def pread(h, buf, offset, flags):
    for i in range(len(buf)):
        buf[i] = (offset + i) % 251
