// A shared-memory mapping backed by a memfd: created by the frontend,
// mapped by the host from the descriptor it was handed.
#pragma once

#include <kj/filesystem.h>
#include <kj/io.h>

#include <cstddef>
#include <cstdint>

namespace nbdcage::ipc {

class ShmRegion {
 public:
  // Creates a sealed-size memfd of `size` bytes and maps it read-write.
  static ShmRegion create(const char* name, uint64_t size);
  // Maps `size` bytes of an existing memfd; fails if the file is smaller.
  static ShmRegion map(kj::AutoCloseFd fd, uint64_t size);

  ShmRegion(ShmRegion&& other) noexcept;
  ShmRegion& operator=(ShmRegion&&) = delete;
  ~ShmRegion();

  uint8_t* data() const { return base_; }
  uint64_t size() const { return size_; }
  int fd() const { return fd_.get(); }

 private:
  ShmRegion(kj::AutoCloseFd fd, uint8_t* base, uint64_t size) : fd_(kj::mv(fd)), base_(base), size_(size) {}
  kj::AutoCloseFd fd_;
  uint8_t* base_;
  uint64_t size_;
};

// An eventfd used as a doorbell.  ring() never blocks; wait() blocks until
// rung (or returns at once if it was rung since the last wait).
class Doorbell {
 public:
  Doorbell();  // a new eventfd
  explicit Doorbell(kj::AutoCloseFd fd) : fd_(kj::mv(fd)) {}
  void ring() const;
  void wait() const;
  void drain() const;  // clears a pending ring without blocking
  int fd() const { return fd_.get(); }

 private:
  kj::AutoCloseFd fd_;
};

}  // namespace nbdcage::ipc
