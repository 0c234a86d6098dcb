// Byte stream over a connected descriptor pair (a socket is both; -s mode
// reads fd 0 and writes fd 1), with an input buffer so that a burst of
// pipelined requests costs one read(2), not one per header.
//
// The handshake uses it blocking (readExact, writeAll).  Transmission
// switches it to non-blocking and drives it from its event loop (fill,
// readInto, writeSome): a connection never blocks on a send while it
// should be reading, so a client that writes a lot before it reads cannot
// deadlock it.
#pragma once

#include <poll.h>
#include <sys/uio.h>

#include <chrono>
#include <optional>

#include <cstddef>
#include <cstdint>

namespace nbdcage::nbd {

enum class IoStatus { kOk, kAgain, kClosed };

class Stream {
 public:
  Stream(int in, int out) : in_(in), out_(out) {}

  // ---- blocking (handshake) ----
  // How long the blocking calls may wait for the client, in all (nullopt:
  // for ever).  Once it is spent they fail, and timedOut() says why.
  void setWaitBudget(std::optional<std::chrono::milliseconds> budget) { budget_ = budget; }
  bool timedOut() const { return timedOut_; }
  bool readExact(void* buf, size_t n);  // false on EOF or error
  bool discard(uint64_t n);
  bool writeAll(struct iovec* iov, int count);
  bool writeAll(const void* buf, size_t n);

  // ---- non-blocking (transmission) ----
  void setNonBlocking();
  // Reads whatever has arrived into the buffer.
  IoStatus fill();
  size_t buffered() const { return end_ - start_; }
  const uint8_t* data() const { return buffer_ + start_; }
  void consume(size_t n) { start_ += n; }
  // Moves up to n bytes into dst: buffered bytes first, then straight from
  // the descriptor (a write's payload lands in shared memory with no copy
  // through the buffer).  `got` says how many.
  IoStatus readInto(uint8_t* dst, size_t n, size_t& got);
  // One writev(2); `written` says how many bytes went.
  IoStatus writeSome(const struct iovec* iov, int count, size_t& written);

  int inFd() const { return in_; }
  int outFd() const { return out_; }

 private:
  static constexpr size_t kBufferSize = 64 * 1024;
  bool readRaw(uint8_t* p, size_t n);
  bool waitFor(int fd, short events);
  bool readyToRead() { return !budget_ || waitFor(in_, POLLIN); }

  int in_;
  int out_;
  uint8_t buffer_[kBufferSize];
  size_t start_ = 0;  // unread bytes are buffer_[start_, end_)
  size_t end_ = 0;
  std::optional<std::chrono::milliseconds> budget_;
  bool timedOut_ = false;
};

}  // namespace nbdcage::nbd
