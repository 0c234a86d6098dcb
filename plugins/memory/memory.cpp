// memory: a RAM disk, with nbdkit's three allocators:
//  - sparse (the default): only 32 KiB pages that were written hold memory,
//    so `memory 1T` costs nothing until used; unwritten and zeroed pages
//    read as zero and report HOLE|ZERO extents;
//  - zstd: the same pages, each kept zstd-compressed;
//  - malloc[,mlock=true]: one flat array of the whole size (optionally
//    locked in RAM), no sparseness, no lock.
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include "page-map.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using nbdcage::pages::kPageSize;
using nbdcage::pages::PageMap;

enum class Allocator { kSparse, kZstd, kMalloc };

int64_t g_size = -1;
Allocator g_allocator = Allocator::kSparse;
bool g_mlock = false;

std::unique_ptr<PageMap> g_pages;  // sparse, zstd
uint8_t* g_flat = nullptr;         // malloc

int memoryConfig(const char* key, const char* value) {
  if (std::strcmp(key, "size") == 0) {
    g_size = nbdkit_parse_size(value);
    return g_size < 0 ? -1 : 0;
  }
  if (std::strcmp(key, "allocator") == 0) {
    // nbdkit's form: NAME[,KEY=VALUE...]; malloc takes mlock=BOOL.
    std::string spec = value, name = spec.substr(0, spec.find(','));
    if (name == "sparse") g_allocator = Allocator::kSparse;
    else if (name == "zstd") g_allocator = Allocator::kZstd;
    else if (name == "malloc") g_allocator = Allocator::kMalloc;
    else {
      nbdkit_error("allocator=%s: the allocator must be sparse, malloc or zstd", value);
      return -1;
    }
    for (size_t at = spec.find(','); at != std::string::npos;) {
      size_t next = spec.find(',', at + 1);
      std::string option = spec.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
      at = next;
      if (name == "malloc" && option.starts_with("mlock=")) {
        int b = nbdkit_parse_bool(option.c_str() + 6);
        if (b == -1) return -1;
        g_mlock = b == 1;
      } else {
        nbdkit_error("allocator=%s: unknown allocator option '%s' (malloc takes mlock=true)", value, option.c_str());
        return -1;
      }
    }
    return 0;
  }
  nbdkit_error("unknown parameter '%s' (memory takes size=SIZE and allocator=sparse|malloc[,mlock=true]|zstd)", key);
  return -1;
}

int memoryConfigComplete() {
  if (g_size < 0) {
    nbdkit_error("the size parameter is required, e.g. 'memory 1G' or 'memory size=1G'");
    return -1;
  }
  if (g_allocator != Allocator::kMalloc) {
    g_pages = std::make_unique<PageMap>(g_allocator == Allocator::kZstd);
    return 0;
  }
  if (static_cast<uint64_t>(g_size) > SIZE_MAX / 2) {
    nbdkit_error("allocator=malloc: %" PRId64 " bytes is more than this machine can address", g_size);
    return -1;
  }
  // calloc: the kernel's zero pages until written.
  g_flat = static_cast<uint8_t*>(std::calloc(1, std::max<size_t>(1, static_cast<size_t>(g_size))));
  if (g_flat == nullptr) {
    nbdkit_error("allocator=malloc: cannot allocate %" PRId64 " bytes: %m", g_size);
    return -1;
  }
  if (g_mlock && g_size > 0 && mlock(g_flat, static_cast<size_t>(g_size)) == -1) {
    nbdkit_error("allocator=malloc,mlock=true: mlock of %" PRId64 " bytes: %m (raise ulimit -l, or see --swap)",
                 g_size);
    return -1;
  }
  return 0;
}

void memoryUnload() {
  g_pages.reset();
  std::free(g_flat);
  g_flat = nullptr;
}

void memoryDumpPlugin() {
  // As nbdkit's memory plugin: what this build's allocators can do.
  std::printf("mlock=yes\nzstd=yes\n");
}

void* memoryOpen(int) { return NBDKIT_HANDLE_NOT_NEEDED; }
int64_t memoryGetSize(void*) { return g_size; }
int memoryYes(void*) { return 1; }
int memoryFuaNative(void*) { return NBDKIT_FUA_NATIVE; }
int memoryCacheNone(void*) { return NBDKIT_CACHE_NONE; }

int memoryPread(void*, void* buf, uint32_t count, uint64_t offset, uint32_t) {
  if (g_flat != nullptr)
    std::memcpy(buf, g_flat + offset, count);
  else
    g_pages->read(static_cast<uint8_t*>(buf), count, offset);
  return 0;
}

int memoryPwrite(void*, const void* buf, uint32_t count, uint64_t offset, uint32_t) {
  if (g_flat != nullptr) {
    std::memcpy(g_flat + offset, buf, count);
    return 0;
  }
  return g_pages->write(static_cast<const uint8_t*>(buf), count, offset) ? 0 : -1;
}

int memoryZero(void*, uint32_t count, uint64_t offset, uint32_t) {
  if (g_flat != nullptr) {
    std::memset(g_flat + offset, 0, count);
    return 0;
  }
  return g_pages->write(nullptr, count, offset) ? 0 : -1;
}

int memoryTrim(void* h, uint32_t count, uint64_t offset, uint32_t flags) {
  return memoryZero(h, count, offset, flags);
}

int memoryFlush(void*, uint32_t) { return 0; }

int memoryExtents(void*, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents* extents) {
  uint64_t end = std::min<uint64_t>(offset + count, static_cast<uint64_t>(g_size));
  if (g_flat != nullptr) return nbdkit_add_extent(extents, offset, end - offset, 0);  // all data
  return g_pages->extents(offset, end, flags, extents);
}

struct nbdkit_plugin makePlugin() {
  struct nbdkit_plugin p {};
  p.name = "memory";
  p.longname = "nbdcage memory plugin";
  p.version = NBDCAGE_VERSION;
  p.config = memoryConfig;
  p.config_complete = memoryConfigComplete;
  p.config_help =
      "size=<SIZE>  (required) Size of the RAM disk.\n"
      "allocator=sparse|malloc[,mlock=true]|zstd  How the disk is kept (default sparse).";
  p.unload = memoryUnload;
  p.dump_plugin = memoryDumpPlugin;
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
