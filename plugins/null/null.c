/* null: a disk of any size that reads as zeroes and discards writes. */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <string.h>

static int64_t size = 0;

static int null_config(const char *key, const char *value)
{
  if (strcmp(key, "size") != 0) {
    nbdkit_error("unknown parameter '%s' (null takes size=SIZE)", key);
    return -1;
  }
  size = nbdkit_parse_size(value);
  return size < 0 ? -1 : 0;
}

static void *null_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t null_get_size(void *h) { return size; }
static int null_yes(void *h) { return 1; }
static int null_fua(void *h) { return NBDKIT_FUA_NATIVE; }
static int null_cache(void *h) { return NBDKIT_CACHE_NATIVE; }

static int null_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  memset(buf, 0, count);
  return 0;
}

static int null_discard(void *h, uint32_t count, uint64_t offset, uint32_t flags) { return 0; }
static int null_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags) { return 0; }
static int null_flush(void *h, uint32_t flags) { return 0; }

static int null_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *e)
{
  return nbdkit_add_extent(e, offset, count, NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO);
}

static struct nbdkit_plugin plugin = {
  .name = "null",
  .longname = "nbdcage null plugin",
  .version = NBDCAGE_VERSION,
  .config = null_config,
  .config_help = "size=<SIZE>  Size of the disk (default 0).",
  .magic_config_key = "size",
  .open = null_open,
  .get_size = null_get_size,
  .can_write = null_yes,
  .can_flush = null_yes,
  .can_trim = null_yes,
  .can_zero = null_yes,
  .can_fast_zero = null_yes,
  .can_fua = null_fua,
  .can_multi_conn = null_yes,
  .can_extents = null_yes,
  .can_cache = null_cache,
  .pread = null_pread,
  .pwrite = null_pwrite,
  .flush = null_flush,
  .trim = null_discard,
  .zero = null_discard,
  .cache = null_discard,
  .extents = null_extents,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
