#include "frontend/host/buffer-allocator.h"

#include <kj/debug.h>

namespace nbdcage::frontend {

BufferAllocator::BufferAllocator(uint64_t size) : size_(size / kGranule * kGranule), freeBytes_(size_) {
  if (size_ > 0) free_.emplace(0, size_);
}

std::optional<uint64_t> BufferAllocator::allocate(uint64_t length) {
  uint64_t want = roundUp(length == 0 ? 1 : length);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < want) continue;
    uint64_t offset = it->first;
    uint64_t rest = it->second - want;
    free_.erase(it);
    if (rest > 0) free_.emplace(offset + want, rest);
    freeBytes_ -= want;
    return offset;
  }
  return std::nullopt;
}

void BufferAllocator::free(uint64_t offset, uint64_t length) {
  uint64_t len = roundUp(length == 0 ? 1 : length);
  KJ_ASSERT(offset % kGranule == 0 && offset + len <= size_, "freeing a slice that was never allocated", offset, len);
  auto next = free_.lower_bound(offset);
  KJ_ASSERT(next == free_.end() || next->first >= offset + len, "double free", offset, len);
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    KJ_ASSERT(prev->first + prev->second <= offset, "double free", offset, len);
    if (prev->first + prev->second == offset) {
      offset = prev->first;
      len += prev->second;
      free_.erase(prev);
    }
  }
  if (next != free_.end() && next->first == offset + len) {
    len += next->second;
    free_.erase(next);
  }
  free_.emplace(offset, len);
  freeBytes_ += roundUp(length == 0 ? 1 : length);
}

}  // namespace nbdcage::frontend
