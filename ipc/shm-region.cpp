#include "ipc/shm-region.h"

#include <kj/debug.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace nbdcage::ipc {

ShmRegion ShmRegion::create(const char* name, uint64_t size) {
  int raw;
  KJ_SYSCALL(raw = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), name);
  kj::AutoCloseFd fd(raw);
  KJ_SYSCALL(ftruncate(fd, static_cast<off_t>(size)), size);
  // The host must not be able to shrink the file under us (SIGBUS).
  KJ_SYSCALL(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) KJ_FAIL_SYSCALL("mmap", errno, size);
  return ShmRegion(kj::mv(fd), static_cast<uint8_t*>(base), size);
}

ShmRegion ShmRegion::map(kj::AutoCloseFd fd, uint64_t size) {
  struct stat st;
  KJ_SYSCALL(fstat(fd, &st));
  KJ_REQUIRE(static_cast<uint64_t>(st.st_size) >= size, "shared region smaller than announced", st.st_size, size);
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) KJ_FAIL_SYSCALL("mmap", errno, size);
  return ShmRegion(kj::mv(fd), static_cast<uint8_t*>(base), size);
}

ShmRegion::ShmRegion(ShmRegion&& other) noexcept : fd_(kj::mv(other.fd_)), base_(other.base_), size_(other.size_) {
  other.base_ = nullptr;
  other.size_ = 0;
}

ShmRegion::~ShmRegion() {
  if (base_ != nullptr) munmap(base_, size_);
}

DoorbellPipe DoorbellPipe::create() {
  int fds[2];
  KJ_SYSCALL(pipe2(fds, O_CLOEXEC));
  return {kj::AutoCloseFd(fds[1]), kj::AutoCloseFd(fds[0])};
}

namespace {
void setNonBlocking(int fd) {
  int flags;
  KJ_SYSCALL(flags = fcntl(fd, F_GETFL));
  KJ_SYSCALL(fcntl(fd, F_SETFL, flags | O_NONBLOCK));
}
}  // namespace

Doorbell::Doorbell(kj::AutoCloseFd ringEnd) : fd_(kj::mv(ringEnd)) { setNonBlocking(fd_); }

void Doorbell::ring() const {
  char one = 1;
  ssize_t n;
  do {
    n = write(fd_, &one, 1);
  } while (n < 0 && errno == EINTR);
  // EAGAIN: the pipe is full of rings the peer has not taken; EPIPE: the
  // peer is gone.  Neither needs another ring.
}

DoorbellWaiter::DoorbellWaiter(kj::AutoCloseFd waitEnd, bool nonBlocking) : fd_(kj::mv(waitEnd)) {
  if (nonBlocking) setNonBlocking(fd_);
}

void DoorbellWaiter::wait() const {
  char rings[64];
  ssize_t n;
  do {
    n = read(fd_, rings, sizeof rings);
  } while (n < 0 && errno == EINTR);
}

void DoorbellWaiter::drain() const {
  char rings[256];
  ssize_t n;
  do {
    n = read(fd_, rings, sizeof rings);
  } while (n == static_cast<ssize_t>(sizeof rings) || (n < 0 && errno == EINTR));
}

}  // namespace nbdcage::ipc
