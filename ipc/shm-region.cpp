#include "ipc/shm-region.h"

#include <kj/debug.h>
#include <fcntl.h>
#include <sys/eventfd.h>
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

Doorbell::Doorbell() {
  int raw;
  KJ_SYSCALL(raw = eventfd(0, EFD_CLOEXEC));
  fd_ = kj::AutoCloseFd(raw);
}

void Doorbell::ring() const {
  uint64_t one = 1;
  ssize_t n;
  do {
    n = write(fd_, &one, sizeof one);
  } while (n < 0 && errno == EINTR);
  // EAGAIN only when the counter is saturated, which still wakes the peer.
}

void Doorbell::wait() const {
  uint64_t value;
  ssize_t n;
  do {
    n = read(fd_, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
}

void Doorbell::drain() const {
  uint64_t value;
  // A non-blocking drain through poll-free read: eventfd is blocking, so only
  // call this when poll() said it is readable.
  (void)!read(fd_, &value, sizeof value);
}

}  // namespace nbdcage::ipc
