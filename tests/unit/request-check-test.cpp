#include <doctest/doctest.h>

#include <cerrno>

#include "frontend/nbd/request-check.h"

using namespace nbdcage::nbd;

namespace {
ExportLimits writable() {
  ExportLimits l;
  l.size = 1 << 20;
  l.txFlags = kTxHasFlags | kTxSendFlush | kTxSendFua | kTxSendTrim | kTxSendWriteZeroes | kTxSendFastZero;
  l.structured = true;
  l.baseAllocation = true;
  return l;
}
Request req(uint16_t type, uint64_t offset, uint32_t length, uint16_t flags = 0) {
  return Request{kRequestMagic, flags, type, 1, offset, length};
}
}  // namespace

TEST_CASE("in-bounds reads and writes pass") {
  CHECK(checkRequest(req(kCmdRead, 0, 512), writable()) == 0);
  CHECK(checkRequest(req(kCmdWrite, (1 << 20) - 512, 512), writable()) == 0);
  CHECK(checkRequest(req(kCmdRead, 1, 3), writable()) == 0);  // byte-granular, as qemu does
}

TEST_CASE("a read past the end is EINVAL, a write past the end ENOSPC") {
  CHECK(checkRequest(req(kCmdRead, (1 << 20) - 512, 1024), writable()) == EINVAL);
  CHECK(checkRequest(req(kCmdWrite, (1 << 20) - 512, 1024), writable()) == ENOSPC);
  CHECK(checkRequest(req(kCmdWriteZeroes, 1 << 20, 1), writable()) == ENOSPC);
}

TEST_CASE("an offset that wraps around 2^64 is caught, not overflowed") {
  CHECK(checkRequest(req(kCmdRead, ~uint64_t{0} - 511, 512), writable()) == EINVAL);
  CHECK(checkRequest(req(kCmdRead, ~uint64_t{0} - 511, 1024), writable()) == EINVAL);
}

TEST_CASE("oversized and zero-length requests are refused without allocation") {
  CHECK(checkRequest(req(kCmdRead, 0, 0xffffffff), writable()) == EINVAL);
  CHECK(checkRequest(req(kCmdRead, 0, 0), writable()) == EINVAL);
  CHECK(checkRequest(req(kCmdWrite, 0, (32u << 20) + 1), writable()) == EINVAL);
}

TEST_CASE("unknown commands and flags are EINVAL") {
  CHECK(checkRequest(req(42, 0, 512), writable()) == EINVAL);
  CHECK(checkRequest(req(kCmdWrite, 0, 512, 0x8000), writable()) == EINVAL);
  CHECK(checkRequest(req(kCmdRead, 0, 512, kCmdFlagReqOne), writable()) == EINVAL);
  CHECK(checkRequest(req(kCmdRead, 0, 512, kCmdFlagNoHole), writable()) == EINVAL);
}

TEST_CASE("flags are accepted only where negotiated") {
  auto l = writable();
  CHECK(checkRequest(req(kCmdWriteZeroes, 0, 512, kCmdFlagFastZero | kCmdFlagNoHole), l) == 0);
  l.txFlags &= ~kTxSendFastZero;
  CHECK(checkRequest(req(kCmdWriteZeroes, 0, 512, kCmdFlagFastZero), l) == EINVAL);
  l.txFlags &= ~kTxSendFua;
  CHECK(checkRequest(req(kCmdWrite, 0, 512, kCmdFlagFua), l) == EINVAL);
  l.structured = false;
  CHECK(checkRequest(req(kCmdRead, 0, 512, kCmdFlagDf), l) == EINVAL);
}

TEST_CASE("writes, trims and zeroes on a read-only export are EPERM") {
  auto l = writable();
  l.txFlags = kTxHasFlags | kTxReadOnly | kTxSendFlush;
  CHECK(checkRequest(req(kCmdWrite, 0, 512), l) == EPERM);
  CHECK(checkRequest(req(kCmdTrim, 0, 512), l) == EPERM);
  CHECK(checkRequest(req(kCmdWriteZeroes, 0, 512), l) == EPERM);
  CHECK(checkRequest(req(kCmdRead, 0, 512), l) == 0);
}

TEST_CASE("flush needs SEND_FLUSH and zero offset and length") {
  auto l = writable();
  CHECK(checkRequest(req(kCmdFlush, 0, 0), l) == 0);
  CHECK(checkRequest(req(kCmdFlush, 512, 0), l) == EINVAL);
  l.txFlags &= ~kTxSendFlush;
  CHECK(checkRequest(req(kCmdFlush, 0, 0), l) == EINVAL);
}

TEST_CASE("block status needs structured replies and a selected context") {
  auto l = writable();
  CHECK(checkRequest(req(kCmdBlockStatus, 0, 4096, kCmdFlagReqOne), l) == 0);
  CHECK(checkRequest(req(kCmdBlockStatus, 1 << 20, 1), l) == EINVAL);
  l.baseAllocation = false;
  CHECK(checkRequest(req(kCmdBlockStatus, 0, 4096), l) == EINVAL);
}

TEST_CASE("a minimum block size makes misaligned requests EINVAL") {
  auto l = writable();
  l.minBlock = 512;
  CHECK(checkRequest(req(kCmdRead, 512, 512), l) == 0);
  CHECK(checkRequest(req(kCmdRead, 1, 3), l) == EINVAL);
}
