/* bye: a test fixture, not a product plugin.  A 1 MiB disk of zeroes that
 * calls nbdkit_disconnect (nbdkit 1.34's API) from a read: at offset 4096
 * gracefully (the read itself completes), at offset 8192 by force. */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <string.h>

static void *bye_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t bye_get_size(void *h) { return 1024 * 1024; }

static int bye_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  if (offset == 4096) nbdkit_disconnect(0);
  if (offset == 8192) nbdkit_disconnect(1);
  memset(buf, 0, count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "bye",
  .open = bye_open,
  .get_size = bye_get_size,
  .pread = bye_pread,
};

NBDKIT_REGISTER_PLUGIN(plugin)
