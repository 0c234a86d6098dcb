/* sleepy: a test fixture, not a product plugin.  A 1 MiB disk of zeroes
 * whose reads at offset 0 sleep for a minute in nbdkit_nanosleep, as
 * nbdkit's delay filter does; everything else is immediate.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <string.h>

static void *sleepy_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t sleepy_get_size(void *h) { return 1024 * 1024; }

static int sleepy_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  if (offset == 0) {
    nbdkit_debug("sleeping in a read");
    if (nbdkit_nanosleep(60, 0) == -1)
      return -1;  /* the server is stopping: errno is ESHUTDOWN */
  }
  memset(buf, 0, count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "sleepy",
  .open = sleepy_open,
  .get_size = sleepy_get_size,
  .pread = sleepy_pread,
};

NBDKIT_REGISTER_PLUGIN(plugin)
