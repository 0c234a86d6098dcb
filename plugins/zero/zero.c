/* zero: a disk of zero bytes, for testing clients' corner cases.  It takes
 * no parameters (as nbdkit's, it ignores a size). */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <string.h>

static int zero_config(const char *key, const char *value)
{
  if (strcmp(key, "size") == 0) return 0;  /* nbdkit's zero plugin ignores it too */
  nbdkit_error("unknown parameter '%s' (the zero plugin takes none: its disk is always 0 bytes)", key);
  return -1;
}

static void *zero_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t zero_get_size(void *h) { return 0; }
static int zero_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags) { return 0; }

static struct nbdkit_plugin plugin = {
  .name = "zero",
  .longname = "nbdcage zero-length plugin",
  .version = NBDCAGE_VERSION,
  .description = "A disk of zero bytes.",
  .config = zero_config,
  .magic_config_key = "size",
  .open = zero_open,
  .get_size = zero_get_size,
  .pread = zero_pread,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
