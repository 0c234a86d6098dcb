// Replies gathered by the completer thread and sent with one writev(2):
// a burst of completions costs one system call, not one per reply.  Read
// data is not copied: the iovecs point into the shared buffers, which are
// released only after the batch is on the wire.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "frontend/nbd/stream.h"

namespace nbdcage::nbd {

class ReplyBatch {
 public:
  static constexpr size_t kMaxMessages = 32;
  static constexpr size_t kMaxHeader = 32;

  explicit ReplyBatch(Stream& stream);

  // Queues one reply: `header` (copied) then `payload` (not copied: it must
  // stay valid until the flush).  Flushes first if the batch is full.
  void add(const uint8_t* header, size_t headerLen, const uint8_t* payload = nullptr, size_t payloadLen = 0);
  // Queues a reply whose body the batch keeps until the flush.
  void add(const uint8_t* header, size_t headerLen, std::vector<uint8_t> body);
  // Runs `fn` once the batch holding what was queued so far has been sent.
  void afterFlush(std::function<void()> fn);

  // Sends everything queued; false if the stream failed (the callbacks
  // still run).
  bool flush();

 private:
  Stream& s_;
  std::vector<struct iovec> iov_;
  std::vector<std::array<uint8_t, kMaxHeader>> headers_;  // capacity fixed: iovecs point in
  size_t messages_ = 0;
  std::deque<std::vector<uint8_t>> bodies_;
  std::vector<std::function<void()>> after_;
};

}  // namespace nbdcage::nbd
