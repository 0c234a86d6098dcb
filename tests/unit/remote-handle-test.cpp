#include <doctest/doctest.h>

#include <sys/eventfd.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cstring>

#include "frontend/host/remote-handle.h"

using nbdcage::frontend::RemoteHandle;
using nbdcage::frontend::RingResources;

namespace {
// Bytes of the shared region that hold memory.
long long allocated(int fd) {
  struct stat st;
  REQUIRE(fstat(fd, &st) == 0);
  return static_cast<long long>(st.st_blocks) * 512;
}
}  // namespace

TEST_CASE("large buffers give their memory back once idle; home slices are kept for reuse") {
  auto rings = RingResources::create(RemoteHandle::kDataAreaSize);
  int fd = rings.region.fd();
  RemoteHandle handle(std::move(rings), {}, kj::AutoCloseFd(eventfd(0, EFD_CLOEXEC)), std::chrono::milliseconds(0),
                      "test", {});
  long long before = allocated(fd);

  auto big = handle.reserve(32u << 20);  // the largest request a client may make
  REQUIRE(big.has_value());
  std::memset(big->buf, 0x5a, big->bufLen);
  CHECK(allocated(fd) >= before + (32ll << 20));
  handle.release(*big);
  handle.releaseIdleMemory();  // too soon: kept for the next large request
  CHECK(allocated(fd) >= before + (32ll << 20));
  CHECK(handle.msUntilDeadline() > 0);  // the loop wakes to give it back
  usleep(static_cast<useconds_t>(RemoteHandle::kIdleRelease.count()) * 1000 + 50000);
  CHECK(handle.msUntilDeadline() == 0);
  handle.enforceDeadlines();
  CHECK(allocated(fd) < before + (1ll << 20));
  CHECK(handle.msUntilDeadline() == -1);  // nothing left to do

  auto small = handle.reserve(4096);
  REQUIRE(small.has_value());
  std::memset(small->buf, 0x5a, small->bufLen);
  long long touched = allocated(fd);
  handle.release(*small);
  CHECK(allocated(fd) == touched);
}
