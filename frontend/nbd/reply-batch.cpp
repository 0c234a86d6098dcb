#include "frontend/nbd/reply-batch.h"

#include <kj/debug.h>

#include <cstring>

namespace nbdcage::nbd {

ReplyBatch::ReplyBatch(Stream& stream) : s_(stream), headers_(kMaxMessages) { iov_.reserve(kMaxMessages * 2); }

void ReplyBatch::add(const uint8_t* header, size_t headerLen, const uint8_t* payload, size_t payloadLen) {
  KJ_ASSERT(headerLen <= kMaxHeader, headerLen);
  if (messages_ == headers_.size()) headers_.emplace_back();
  auto& h = headers_[messages_++];
  std::memcpy(h.data(), header, headerLen);
  iov_.push_back({h.data(), headerLen});
  if (payloadLen > 0) iov_.push_back({const_cast<uint8_t*>(payload), payloadLen});
}

void ReplyBatch::add(const uint8_t* header, size_t headerLen, std::vector<uint8_t> body) {
  bodies_.push_back(std::move(body));
  add(header, headerLen, bodies_.back().data(), bodies_.back().size());
}

void ReplyBatch::afterFlush(std::function<void()> fn) { after_.push_back(std::move(fn)); }

void ReplyBatch::finish() {
  iov_.clear();
  sent_ = 0;
  messages_ = 0;
  bodies_.clear();
  for (auto& fn : after_) fn();
  after_.clear();
}

IoStatus ReplyBatch::flushSome() {
  while (sent_ < iov_.size()) {
    size_t written;
    IoStatus st = s_.writeSome(iov_.data() + sent_, static_cast<int>(iov_.size() - sent_), written);
    if (st == IoStatus::kClosed) {
      finish();
      return st;
    }
    if (st == IoStatus::kAgain) return st;
    while (sent_ < iov_.size() && written >= iov_[sent_].iov_len) written -= iov_[sent_++].iov_len;
    if (sent_ < iov_.size()) {
      iov_[sent_].iov_base = static_cast<uint8_t*>(iov_[sent_].iov_base) + written;
      iov_[sent_].iov_len -= written;
    }
  }
  finish();
  return IoStatus::kOk;
}

}  // namespace nbdcage::nbd
