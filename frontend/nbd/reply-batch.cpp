#include "frontend/nbd/reply-batch.h"

#include <kj/debug.h>

#include <cstring>

namespace nbdcage::nbd {

ReplyBatch::ReplyBatch(Stream& stream) : s_(stream), headers_(kMaxMessages) { iov_.reserve(kMaxMessages * 2); }

void ReplyBatch::add(const uint8_t* header, size_t headerLen, const uint8_t* payload, size_t payloadLen) {
  KJ_ASSERT(headerLen <= kMaxHeader, headerLen);
  if (messages_ == kMaxMessages) flush();
  auto& h = headers_[messages_++];
  std::memcpy(h.data(), header, headerLen);
  iov_.push_back({h.data(), headerLen});
  if (payloadLen > 0) iov_.push_back({const_cast<uint8_t*>(payload), payloadLen});
}

void ReplyBatch::add(const uint8_t* header, size_t headerLen, std::vector<uint8_t> body) {
  if (messages_ == kMaxMessages) flush();
  bodies_.push_back(std::move(body));
  add(header, headerLen, bodies_.back().data(), bodies_.back().size());
}

void ReplyBatch::afterFlush(std::function<void()> fn) { after_.push_back(std::move(fn)); }

bool ReplyBatch::flush() {
  bool ok = true;
  // writev takes at most IOV_MAX (1024) entries; we hold at most 128.
  if (!iov_.empty()) ok = s_.writeAll(iov_.data(), static_cast<int>(iov_.size()));
  iov_.clear();
  messages_ = 0;
  bodies_.clear();
  for (auto& fn : after_) fn();
  after_.clear();
  return ok;
}

}  // namespace nbdcage::nbd
