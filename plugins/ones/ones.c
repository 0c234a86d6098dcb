/* ones: a disk every byte of which reads as 0xff (or byte=N); writes are
 * accepted and thrown away, as the null plugin's.  For testing. */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <string.h>

static int64_t size = -1;
static uint8_t byte = 0xff;

static int ones_config(const char *key, const char *value)
{
  if (strcmp(key, "size") == 0) {
    size = nbdkit_parse_size(value);
    return size < 0 ? -1 : 0;
  }
  if (strcmp(key, "byte") == 0) return nbdkit_parse_uint8_t(key, value, &byte);
  nbdkit_error("unknown parameter '%s' (ones takes size=SIZE and byte=N)", key);
  return -1;
}

static int ones_config_complete(void)
{
  if (size < 0) { nbdkit_error("the size parameter is required, e.g. 'ones 1G'"); return -1; }
  return 0;
}

static void *ones_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t ones_get_size(void *h) { return size; }
static int ones_yes(void *h) { return 1; }
static int ones_fua_native(void *h) { return NBDKIT_FUA_NATIVE; }

static int ones_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  memset(buf, byte, count);
  return 0;
}
static int ones_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags) { return 0; }
static int ones_zero(void *h, uint32_t count, uint64_t offset, uint32_t flags) { return 0; }
static int ones_trim(void *h, uint32_t count, uint64_t offset, uint32_t flags) { return 0; }
static int ones_flush(void *h, uint32_t flags) { return 0; }

static struct nbdkit_plugin plugin = {
  .name = "ones",
  .longname = "nbdcage ones plugin",
  .version = NBDCAGE_VERSION,
  .description = "Every byte reads as 0xff (or byte=N); writes are discarded.",
  .config = ones_config,
  .config_complete = ones_config_complete,
  .config_help = "[size=]<SIZE>  (required) The size of the disk.\nbyte=<N>       The byte every read returns (default 255).",
  .magic_config_key = "size",
  .open = ones_open,
  .get_size = ones_get_size,
  .can_write = ones_yes,
  .can_flush = ones_yes,
  .can_trim = ones_yes,
  .can_zero = ones_yes,
  .can_fast_zero = ones_yes,
  .can_fua = ones_fua_native,
  .can_multi_conn = ones_yes,
  .pread = ones_pread,
  .pwrite = ones_pwrite,
  .zero = ones_zero,
  .trim = ones_trim,
  .flush = ones_flush,
};

NBDKIT_REGISTER_PLUGIN(plugin)
