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

  // Back-pressure: once kMaxMessages are queued, take no new requests and
  // drain no more completions until flushSome() has sent them.  add() still
  // accepts more: one completion below may answer several requests (a
  // filter's prefetch), and each of them must be queued.
  bool full() const { return messages_ >= kMaxMessages; }
  size_t room() const { return full() ? 0 : kMaxMessages - messages_; }
  bool empty() const { return iov_.empty(); }

  // Queues one reply: `header` (copied) then `payload` (not copied: it must
  // stay valid until the batch is sent).
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
  // A deque: it grows without moving what the iovecs point into.
  std::deque<std::array<uint8_t, kMaxHeader>> headers_;
  size_t messages_ = 0;
  std::deque<std::vector<uint8_t>> bodies_;
  std::vector<std::function<void()>> after_;
};

}  // namespace nbdcage::nbd
