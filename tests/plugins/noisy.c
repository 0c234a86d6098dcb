/* noisy: a test fixture, not a product plugin.  A 1 MiB disk of 0xab
 * bytes whose callbacks write junk to standard output and read standard
 * input, as careless plugins do.  With `nbdcage -s` the protocol runs on
 * stdin/stdout, so if the plugin host shared them the junk would corrupt
 * the stream (and the read would eat client bytes).
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *noisy_open(int readonly)
{
  char buf[16];
  (void)!write(STDOUT_FILENO, "JUNK FROM OPEN\n", 15);
  (void)!read(STDIN_FILENO, buf, sizeof buf);
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t noisy_get_size(void *h) { return 1024 * 1024; }

static int noisy_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  printf("JUNK FROM PREAD\n");
  fflush(stdout);
  memset(buf, 0xab, count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "noisy",
  .open = noisy_open,
  .get_size = noisy_get_size,
  .pread = noisy_pread,
};

NBDKIT_REGISTER_PLUGIN(plugin)
