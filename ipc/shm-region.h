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

// A doorbell: a pipe, one direction.  Each side holds only its own end,
// an open file description of its own: the ringer cannot take a ring back
// (it has no read end), the sleeper cannot ring, and neither can change
// the other's flags (O_NONBLOCK belongs to the description).  So a hostile
// peer can neither make our ring() block nor steal the wake-up our poll()
// saw: at worst it rings too often, which costs one spurious wake-up.
struct DoorbellPipe {
  kj::AutoCloseFd ringEnd;  // write end
  kj::AutoCloseFd waitEnd;  // read end
  static DoorbellPipe create();  // both ends blocking and close-on-exec
};

// The ringing side.  ring() never blocks: a full pipe is already rung.
class Doorbell {
 public:
  explicit Doorbell(kj::AutoCloseFd ringEnd);  // made non-blocking
  void ring() const;
  int fd() const { return fd_.get(); }

 private:
  kj::AutoCloseFd fd_;
};

// The sleeping side.  wait() blocks until rung (or returns at once if rung
// since); drain() takes every pending ring without blocking.
class DoorbellWaiter {
 public:
  // `nonBlocking`: drain() only, as the frontend's poll() loop uses it.
  DoorbellWaiter(kj::AutoCloseFd waitEnd, bool nonBlocking);
  void wait() const;
  void drain() const;
  int fd() const { return fd_.get(); }

 private:
  kj::AutoCloseFd fd_;
};

}  // namespace nbdcage::ipc
