#include <doctest/doctest.h>

#include <sys/eventfd.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cstring>
#include <vector>

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

TEST_CASE("large buffers give their memory back once idle; home slices once the whole handle is") {
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

  // Home slices: kept for reuse while the handle is busy...
  long long beforeSmall = allocated(fd);
  std::vector<nbdcage::chain::Slot> held;
  for (int i = 0; i < 32; ++i) {  // a client at queue depth 32 with 128 KiB requests
    auto s = handle.reserve(RemoteHandle::kHomeSlice);
    REQUIRE(s.has_value());
    std::memset(s->buf, 0x5a, s->bufLen);
    held.push_back(*s);
  }
  long long touched = allocated(fd);
  CHECK(touched >= beforeSmall + 32 * static_cast<long long>(RemoteHandle::kHomeSlice));
  auto keep = held.back();
  held.pop_back();
  for (const auto& s : held) handle.release(s);
  usleep(static_cast<useconds_t>(RemoteHandle::kIdleRelease.count()) * 1000 + 50000);
  handle.enforceDeadlines();
  CHECK(allocated(fd) == touched);      // one buffer is still held: nothing goes
  CHECK(handle.msUntilDeadline() == -1);  // and the loop need not wake for it
  handle.release(keep);
  handle.releaseIdleMemory();             // too soon
  CHECK(allocated(fd) == touched);
  CHECK(handle.msUntilDeadline() > 0);
  usleep(static_cast<useconds_t>(RemoteHandle::kIdleRelease.count()) * 1000 + 50000);
  handle.enforceDeadlines();
  // ...and given back once it has held nothing for a while.
  CHECK(allocated(fd) < beforeSmall + (1ll << 20));
  CHECK(handle.msUntilDeadline() == -1);
}
