/* full: a disk that reads as zeroes and is always full: every write, zero
 * and trim fails with ENOSPC, as a thin-provisioned disk whose pool has
 * run out.  For testing how clients handle a full disk. */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <errno.h>
#include <string.h>

static int64_t size = -1;

static int full_config(const char *key, const char *value)
{
  if (strcmp(key, "size") != 0) {
    nbdkit_error("unknown parameter '%s' (full takes size=SIZE)", key);
    return -1;
  }
  size = nbdkit_parse_size(value);
  return size < 0 ? -1 : 0;
}

static int full_config_complete(void)
{
  if (size < 0) { nbdkit_error("the size parameter is required, e.g. 'full 1G'"); return -1; }
  return 0;
}

static void *full_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t full_get_size(void *h) { return size; }
static int full_yes(void *h) { return 1; }
static int full_cache_none(void *h) { return NBDKIT_CACHE_NONE; }

static int full_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  memset(buf, 0, count);
  return 0;
}

static int no_space(void)
{
  nbdkit_error("no space left on the device (the full plugin's disk is always full)");
  nbdkit_set_error(ENOSPC);
  return -1;
}
static int full_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags) { return no_space(); }
static int full_zero(void *h, uint32_t count, uint64_t offset, uint32_t flags) { return no_space(); }
static int full_trim(void *h, uint32_t count, uint64_t offset, uint32_t flags) { return no_space(); }
static int full_flush(void *h, uint32_t flags) { return 0; }

static int full_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *extents)
{
  return nbdkit_add_extent(extents, offset, count, NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO);
}

static struct nbdkit_plugin plugin = {
  .name = "full",
  .longname = "nbdcage full disk plugin",
  .version = NBDCAGE_VERSION,
  .description = "Reads zeroes; every write, zero and trim fails with ENOSPC.",
  .config = full_config,
  .config_complete = full_config_complete,
  .config_help = "[size=]<SIZE>  (required) The size of the disk.",
  .magic_config_key = "size",
  .open = full_open,
  .get_size = full_get_size,
  .can_write = full_yes,
  .can_flush = full_yes,
  .can_trim = full_yes,
  .can_zero = full_yes,
  .can_extents = full_yes,
  .can_multi_conn = full_yes,
  .can_cache = full_cache_none,
  .pread = full_pread,
  .pwrite = full_pwrite,
  .zero = full_zero,
  .trim = full_trim,
  .flush = full_flush,
  .extents = full_extents,
};

NBDKIT_REGISTER_PLUGIN(plugin)
