#include <doctest/doctest.h>

#include "frontend/nbd/wire.h"

using namespace nbdcage::nbd;

TEST_CASE("integers are big-endian on the wire") {
  uint8_t b[8];
  putU16(b, 0x1234);
  CHECK(b[0] == 0x12);
  CHECK(b[1] == 0x34);
  putU32(b, 0x25609513);
  CHECK(b[0] == 0x25);
  CHECK(b[3] == 0x13);
  CHECK(getU32(b) == 0x25609513u);
  putU64(b, 0x0003e889045565a9ULL);
  CHECK(b[0] == 0x00);
  CHECK(b[1] == 0x03);
  CHECK(b[7] == 0xa9);
  CHECK(getU64(b) == 0x0003e889045565a9ULL);
}

TEST_CASE("a request header decodes field by field") {
  const uint8_t raw[28] = {0x25, 0x60, 0x95, 0x13, 0x00, 0x05, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef,
                           0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0, 0, 0, 0x10, 0x00, 0, 0, 0x02, 0x00};
  Request r = decodeRequest(raw);
  CHECK(r.magic == kRequestMagic);
  CHECK(r.flags == 5);
  CHECK(r.type == kCmdWrite);
  CHECK(r.cookie == 0xdeadbeefcafebabeULL);
  CHECK(r.offset == 0x1000);
  CHECK(r.length == 0x200);
}

TEST_CASE("a simple reply echoes the cookie bit-exact") {
  auto b = encodeSimpleReply(kErrInval, 0xdeadbeefcafebabeULL);
  CHECK(getU32(b.data()) == kSimpleReplyMagic);
  CHECK(getU32(b.data() + 4) == 22u);
  CHECK(getU64(b.data() + 8) == 0xdeadbeefcafebabeULL);
}

TEST_CASE("a structured chunk header has magic, flags, type, cookie and length") {
  uint8_t b[kChunkHeaderSize];
  encodeChunkHeader(b, kChunkFlagDone, kChunkError, 7, 6);
  CHECK(getU32(b) == kStructuredReplyMagic);
  CHECK(getU16(b + 4) == kChunkFlagDone);
  CHECK(getU16(b + 6) == 32769);
  CHECK(getU64(b + 8) == 7u);
  CHECK(getU32(b + 16) == 6u);
}

TEST_CASE("an option reply header carries the reply magic and echoes the option") {
  uint8_t b[kOptionReplyHeaderSize];
  encodeOptionReplyHeader(b, kOptGo, kRepErrUnknown, 3);
  CHECK(getU64(b) == kOptReplyMagic);
  CHECK(getU32(b + 8) == kOptGo);
  CHECK(getU32(b + 12) == (1u << 31 | 6));
  CHECK(getU32(b + 16) == 3u);
}

TEST_CASE("host errnos map onto the NBD error set") {
  CHECK(toNbdError(0) == 0u);
  CHECK(toNbdError(EROFS) == kErrPerm);
  CHECK(toNbdError(EPERM) == kErrPerm);
  CHECK(toNbdError(EDQUOT) == kErrNoSpc);
  CHECK(toNbdError(EFBIG) == kErrNoSpc);
  CHECK(toNbdError(ENOTSUP) == kErrNotSup);
  CHECK(toNbdError(ESHUTDOWN) == kErrShutdown);
  CHECK(toNbdError(EBADF) == kErrIo);  // anything unlisted is an I/O error
}
