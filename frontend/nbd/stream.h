// Blocking byte stream over a connected descriptor pair (a socket is both;
// -s mode reads fd 0 and writes fd 1).  Reads are buffered, so that a burst
// of pipelined requests costs one read(2), not one per header; a large
// read (a write's payload) goes straight into the caller's buffer once the
// buffered bytes are used up.  Writes from several threads are serialised
// by one lock so that replies never interleave mid-message.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace nbdcage::nbd {

class Stream {
 public:
  Stream(int in, int out) : in_(in), out_(out) {}

  // Reads exactly n bytes; false on EOF or error.
  bool readExact(void* buf, size_t n);
  // Reads and drops n bytes (a rejected write's payload); false on EOF.
  bool discard(uint64_t n);
  // Writes every byte of the vector, as one message; false on error.
  bool writeAll(struct iovec* iov, int count);
  bool writeAll(const void* buf, size_t n);

  // Ends both directions so that a thread blocked in readExact returns.
  void shutdown();

  int inFd() const { return in_; }

 private:
  static constexpr size_t kBufferSize = 64 * 1024;
  // Reads straight from the descriptor; false on EOF or error.
  bool readRaw(uint8_t* p, size_t n);

  int in_;
  int out_;
  std::mutex writeLock_;
  uint8_t buffer_[kBufferSize];
  size_t start_ = 0;  // unread bytes are buffer_[start_, end_)
  size_t end_ = 0;
};

}  // namespace nbdcage::nbd
