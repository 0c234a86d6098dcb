// The memory and data plugins' store: 32 KiB pages, only those that hold
// data allocated, kept as they are or zstd-compressed.  Thread-safe.
#pragma once

#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "nbdcage-plugin.h"

namespace nbdcage::pages {

inline constexpr uint64_t kPageSize = 32 * 1024;

inline bool allZero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

// Visits [offset, offset+count) page by page: fn(pageIndex, offsetInPage, length, bufferPosition).
template <typename Fn>
inline void forEachPage(uint64_t offset, uint32_t count, Fn&& fn) {
  uint64_t done = 0;
  while (done < count) {
    uint64_t pos = offset + done;
    uint64_t in = pos % kPageSize;
    uint64_t len = std::min<uint64_t>(kPageSize - in, count - done);
    fn(pos / kPageSize, in, len, done);
    done += len;
  }
}

// The sparse and zstd allocators: a map of the pages that hold data.
// Readers share the lock; writers and zeroers exclude.  A page is stored
// as it is (sparse: written in place) or compressed (zstd: unpacked,
// changed, packed again); a page that becomes all zero through a zero or
// trim (sparse) or any change (zstd) is dropped, so it is a hole again.
class PageMap {
 public:
  explicit PageMap(bool compress) : compress_(compress) {}

  void read(uint8_t* out, uint32_t count, uint64_t offset) {
    std::shared_lock lock(lock_);
    uint8_t page[kPageSize];
    forEachPage(offset, count, [&](uint64_t index, uint64_t in, uint64_t len, uint64_t at) {
      auto it = pages_.find(index);
      if (it == pages_.end()) {
        std::memset(out + at, 0, len);
      } else if (!compress_) {
        std::memcpy(out + at, it->second.data() + in, len);
      } else {
        unpack(it->second, page);
        std::memcpy(out + at, page + in, len);
      }
    });
  }

  // `in` null: zeroes.  False (errno set) if a page could not be stored.
  bool write(const uint8_t* in, uint32_t count, uint64_t offset) {
    std::unique_lock lock(lock_);
    uint8_t page[kPageSize];
    bool ok = true;
    forEachPage(offset, count, [&](uint64_t index, uint64_t inPage, uint64_t len, uint64_t at) {
      auto it = pages_.find(index);
      if (it == pages_.end() && (in == nullptr || allZero(in + at, len))) return;  // a hole stays a hole
      if (!compress_) {  // in place: the hot path of the default allocator
        if (it == pages_.end()) it = pages_.emplace(index, std::vector<uint8_t>(kPageSize)).first;
        uint8_t* bytes = it->second.data();
        if (in == nullptr)
          std::memset(bytes + inPage, 0, len);
        else
          std::memcpy(bytes + inPage, in + at, len);
        if (in == nullptr && allZero(bytes, kPageSize)) pages_.erase(it);
        return;
      }
      if (it == pages_.end()) std::memset(page, 0, kPageSize);
      else unpack(it->second, page);
      if (in == nullptr)
        std::memset(page + inPage, 0, len);
      else
        std::memcpy(page + inPage, in + at, len);
      if (allZero(page, kPageSize)) {
        if (it != pages_.end()) pages_.erase(it);
        return;
      }
      std::vector<uint8_t> stored;
      if (!pack(page, stored)) {
        ok = false;
        return;
      }
      pages_[index] = std::move(stored);
    });
    return ok;
  }

  // [offset, end) as extents: pages that hold data, and holes that read
  // as zeroes, neighbours of one kind merged.
  int extents(uint64_t offset, uint64_t end, uint32_t flags, struct nbdkit_extents* out) {
    std::shared_lock lock(lock_);
    for (uint64_t pos = offset; pos < end;) {
      uint64_t page = pos / kPageSize;
      bool data = present(page);
      uint64_t runEnd = (page + 1) * kPageSize;
      while (runEnd < end && present(runEnd / kPageSize) == data) runEnd += kPageSize;
      runEnd = std::min(runEnd, end);
      if (nbdkit_add_extent(out, pos, runEnd - pos, data ? 0 : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1) return -1;
      if (flags & NBDKIT_FLAG_REQ_ONE) break;
      pos = runEnd;
    }
    return 0;
  }

 private:
  bool present(uint64_t index) const { return pages_.count(index) != 0; }
  // One context of each kind per thread, made once: zstd's one-shot calls
  // would allocate and free a context for every page.
  static ZSTD_CCtx* compressor() {
    thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> c(ZSTD_createCCtx(), ZSTD_freeCCtx);
    return c.get();
  }
  static ZSTD_DCtx* decompressor() {
    thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
    return d.get();
  }

  bool pack(const uint8_t* page, std::vector<uint8_t>& out) const {
    out.resize(ZSTD_compressBound(kPageSize));
    if (compressor() == nullptr) {
      nbdkit_error("zstd: cannot make a compression context");
      errno = ENOMEM;
      return false;
    }
    size_t n = ZSTD_compressCCtx(compressor(), out.data(), out.size(), page, kPageSize, 1);
    if (ZSTD_isError(n)) {
      nbdkit_error("zstd: %s", ZSTD_getErrorName(n));
      errno = EIO;
      return false;
    }
    out.resize(n);
    out.shrink_to_fit();
    return true;
  }
  static void unpack(const std::vector<uint8_t>& stored, uint8_t* page) {
    if (decompressor() == nullptr) std::abort();  // no memory for a context: nothing better to do
    size_t n = ZSTD_decompressDCtx(decompressor(), page, kPageSize, stored.data(), stored.size());
    if (ZSTD_isError(n) || n != kPageSize) std::abort();  // we wrote it: corrupt memory
  }

  bool compress_;
  std::shared_mutex lock_;
  std::unordered_map<uint64_t, std::vector<uint8_t>> pages_;
};

}  // namespace nbdcage::pages
