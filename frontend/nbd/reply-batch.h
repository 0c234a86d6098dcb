// The connection's outgoing replies, sent with as few writev(2) calls as
// possible and never blocking: a burst of completions costs one system
// call, and a slow reader only makes the batch wait.  Read data is not
// copied: the iovecs point into the shared buffers, which are released
// (afterFlush) only once their bytes are on the wire.
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
  static constexpr size_t kMaxMessages = 64;
  static constexpr size_t kMaxHeader = 32;

  explicit ReplyBatch(Stream& stream);

  // No room for another message until flushSome() has sent everything.
  bool full() const { return messages_ == kMaxMessages; }
  size_t room() const { return kMaxMessages - messages_; }
  bool empty() const { return iov_.empty(); }

  // Queues one reply: `header` (copied) then `payload` (not copied: it must
  // stay valid until the batch is sent).  Requires !full().
  void add(const uint8_t* header, size_t headerLen, const uint8_t* payload = nullptr, size_t payloadLen = 0);
  // Queues a reply whose body the batch keeps until it is sent.
  void add(const uint8_t* header, size_t headerLen, std::vector<uint8_t> body);
  // Runs `fn` once everything queued so far has been sent (or the stream failed).
  void afterFlush(std::function<void()> fn);

  // Writes as much as the descriptor takes now.  kOk: all sent; kAgain:
  // some left (wait for POLLOUT); kClosed: the stream failed and everything
  // queued was dropped.
  IoStatus flushSome();

 private:
  void finish();

  Stream& s_;
  std::vector<struct iovec> iov_;
  size_t sent_ = 0;  // iovecs already written completely
  std::vector<std::array<uint8_t, kMaxHeader>> headers_;  // capacity fixed: iovecs point in
  size_t messages_ = 0;
  std::deque<std::vector<uint8_t>> bodies_;
  std::vector<std::function<void()>> after_;
};

}  // namespace nbdcage::nbd
