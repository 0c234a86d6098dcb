/* pattern: a read-only disk in which every aligned 8-byte word holds its
 * own byte offset, big-endian.  Any read can be checked without a copy of
 * the disk, which makes it the reference source for copy tests.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <string.h>

static int64_t size = 0;

static int pattern_config(const char *key, const char *value)
{
  if (strcmp(key, "size") != 0) {
    nbdkit_error("unknown parameter '%s' (pattern takes size=SIZE)", key);
    return -1;
  }
  size = nbdkit_parse_size(value);
  return size < 0 ? -1 : 0;
}

static void *pattern_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t pattern_get_size(void *h) { return size; }
static int pattern_yes(void *h) { return 1; }
static int pattern_cache(void *h) { return NBDKIT_CACHE_EMULATE; }

static int pattern_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  unsigned char *out = buf;
  for (uint32_t i = 0; i < count;) {
    uint64_t pos = offset + i;
    uint64_t word = pos & ~(uint64_t)7;
    unsigned byte = (unsigned)(pos & 7);
    out[i++] = (unsigned char)(word >> (8 * (7 - byte)));
  }
  return 0;
}

static int pattern_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *e)
{
  return nbdkit_add_extent(e, offset, count, 0);
}

static struct nbdkit_plugin plugin = {
  .name = "pattern",
  .longname = "nbdcage pattern plugin",
  .version = NBDCAGE_VERSION,
  .config = pattern_config,
  .config_help = "size=<SIZE>  (required) Size of the disk.",
  .magic_config_key = "size",
  .open = pattern_open,
  .get_size = pattern_get_size,
  .can_multi_conn = pattern_yes,
  .can_extents = pattern_yes,
  .can_cache = pattern_cache,
  .pread = pattern_pread,
  .extents = pattern_extents,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
