// memory: a sparse RAM disk.  Only pages that were written hold memory, so
// `memory 1T` costs nothing until used.  Unwritten and zeroed pages read as
// zero and report HOLE|ZERO extents.
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace {

constexpr uint64_t kPageSize = 32 * 1024;

struct Page {
  uint8_t bytes[kPageSize];
};

int64_t g_size = -1;
std::shared_mutex g_lock;  // readers share; writers and zeroers exclude
std::unordered_map<uint64_t, std::unique_ptr<Page>> g_pages;

bool allZero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

int memoryConfig(const char* key, const char* value) {
  if (std::strcmp(key, "size") != 0) {
    nbdkit_error("unknown parameter '%s' (memory takes size=SIZE)", key);
    return -1;
  }
  g_size = nbdkit_parse_size(value);
  return g_size < 0 ? -1 : 0;
}

int memoryConfigComplete() {
  if (g_size < 0) {
    nbdkit_error("the size parameter is required, e.g. 'memory 1G' or 'memory size=1G'");
    return -1;
  }
  return 0;
}

void* memoryOpen(int) { return NBDKIT_HANDLE_NOT_NEEDED; }
int64_t memoryGetSize(void*) { return g_size; }
int memoryYes(void*) { return 1; }
int memoryFuaNative(void*) { return NBDKIT_FUA_NATIVE; }
int memoryCacheNone(void*) { return NBDKIT_CACHE_NONE; }

// Visits [offset, offset+count) page by page: fn(pageIndex, offsetInPage, length, bufferPosition).
template <typename Fn>
void forEachPage(uint64_t offset, uint32_t count, Fn&& fn) {
  uint64_t done = 0;
  while (done < count) {
    uint64_t pos = offset + done;
    uint64_t in = pos % kPageSize;
    uint64_t len = std::min<uint64_t>(kPageSize - in, count - done);
    fn(pos / kPageSize, in, len, done);
    done += len;
  }
}

int memoryPread(void*, void* buf, uint32_t count, uint64_t offset, uint32_t) {
  auto* out = static_cast<uint8_t*>(buf);
  std::shared_lock lock(g_lock);
  forEachPage(offset, count, [&](uint64_t page, uint64_t in, uint64_t len, uint64_t at) {
    auto it = g_pages.find(page);
    if (it == g_pages.end())
      std::memset(out + at, 0, len);
    else
      std::memcpy(out + at, it->second->bytes + in, len);
  });
  return 0;
}

int memoryPwrite(void*, const void* buf, uint32_t count, uint64_t offset, uint32_t) {
  auto* in = static_cast<const uint8_t*>(buf);
  std::unique_lock lock(g_lock);
  forEachPage(offset, count, [&](uint64_t page, uint64_t inPage, uint64_t len, uint64_t at) {
    auto& slot = g_pages[page];
    if (!slot) {
      if (allZero(in + at, len)) {
        g_pages.erase(page);  // writing zeroes to a hole keeps it a hole
        return;
      }
      slot.reset(new Page());  // value-initialised: zero-filled
    }
    std::memcpy(slot->bytes + inPage, in + at, len);
  });
  return 0;
}

int memoryZero(void*, uint32_t count, uint64_t offset, uint32_t) {
  std::unique_lock lock(g_lock);
  forEachPage(offset, count, [&](uint64_t page, uint64_t in, uint64_t len, uint64_t) {
    auto it = g_pages.find(page);
    if (it == g_pages.end()) return;
    if (len == kPageSize) {
      g_pages.erase(it);
    } else {
      std::memset(it->second->bytes + in, 0, len);
      if (allZero(it->second->bytes, kPageSize)) g_pages.erase(it);
    }
  });
  return 0;
}

int memoryTrim(void* h, uint32_t count, uint64_t offset, uint32_t flags) {
  return memoryZero(h, count, offset, flags);
}

int memoryFlush(void*, uint32_t) { return 0; }

int memoryExtents(void*, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents* extents) {
  std::shared_lock lock(g_lock);
  uint64_t end = std::min<uint64_t>(offset + count, static_cast<uint64_t>(g_size));
  uint64_t pos = offset;
  while (pos < end) {
    uint64_t page = pos / kPageSize;
    bool present = g_pages.count(page) != 0;
    uint64_t runEnd = (page + 1) * kPageSize;
    // Merge neighbouring pages of the same kind into one extent.
    while (runEnd < end && (g_pages.count(runEnd / kPageSize) != 0) == present) runEnd += kPageSize;
    runEnd = std::min(runEnd, end);
    if (nbdkit_add_extent(extents, pos, runEnd - pos, present ? 0 : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1)
      return -1;
    if (flags & NBDKIT_FLAG_REQ_ONE) break;
    pos = runEnd;
  }
  return 0;
}

struct nbdkit_plugin makePlugin() {
  struct nbdkit_plugin p {};
  p.name = "memory";
  p.longname = "nbdcage sparse memory plugin";
  p.version = NBDCAGE_VERSION;
  p.config = memoryConfig;
  p.config_complete = memoryConfigComplete;
  p.config_help = "size=<SIZE>  (required) Size of the RAM disk.";
  p.magic_config_key = "size";
  p.open = memoryOpen;
  p.get_size = memoryGetSize;
  p.can_write = memoryYes;
  p.can_flush = memoryYes;
  p.can_trim = memoryYes;
  p.can_zero = memoryYes;
  p.can_fast_zero = memoryYes;
  p.can_fua = memoryFuaNative;
  p.can_multi_conn = memoryYes;
  p.can_extents = memoryYes;
  p.can_cache = memoryCacheNone;
  p.pread = memoryPread;
  p.pwrite = memoryPwrite;
  p.zero = memoryZero;
  p.trim = memoryTrim;
  p.flush = memoryFlush;
  p.extents = memoryExtents;
  p.errno_is_preserved = 1;
  return p;
}

struct nbdkit_plugin plugin = makePlugin();

}  // namespace

NBDKIT_REGISTER_PLUGIN(plugin)
