// First-fit allocator over one handle's data area.  Offsets only: the
// memory itself is the shared region.  Not thread-safe; RemoteHandle
// guards it with its own lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

namespace nbdcage::frontend {

class BufferAllocator {
 public:
  static constexpr uint64_t kGranule = 4096;

  explicit BufferAllocator(uint64_t size);

  // A slice of at least `length` bytes (rounded up to the granule), or
  // nullopt when no free run is long enough right now.
  std::optional<uint64_t> allocate(uint64_t length);
  // Returns a slice; `length` must be what allocate() was asked for.
  void free(uint64_t offset, uint64_t length);

  uint64_t freeBytes() const { return freeBytes_; }
  uint64_t size() const { return size_; }

  static uint64_t roundUp(uint64_t n) { return (n + kGranule - 1) / kGranule * kGranule; }

 private:
  uint64_t size_;
  uint64_t freeBytes_;
  std::map<uint64_t, uint64_t> free_;  // offset -> length, never adjacent
};

}  // namespace nbdcage::frontend
