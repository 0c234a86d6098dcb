/* shutdown: a test fixture, not a product plugin.  A 1 MiB disk of zeroes
 * that asks the server to shut down (nbdkit_shutdown) when written to, as
 * a plugin that has finished its job would.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <string.h>

static void *shutdown_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t shutdown_get_size(void *h) { return 1024 * 1024; }

static int shutdown_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  memset(buf, 0, count);
  return 0;
}

static int shutdown_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  nbdkit_shutdown();
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "shutdown",
  .open = shutdown_open,
  .get_size = shutdown_get_size,
  .pread = shutdown_pread,
  .pwrite = shutdown_pwrite,
};

NBDKIT_REGISTER_PLUGIN(plugin)
