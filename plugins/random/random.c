/* random: a disk of random bytes, the same for the same seed=.  Writes are
 * accepted only if they write what is already there (so copying the disk
 * onto itself works, and a client that changes it is told): anything else
 * fails with EIO, as nbdkit's random plugin does. */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "random-bytes.h"

static int64_t size = -1;
static uint64_t seed;
static bool seeded;

static int random_config(const char *key, const char *value)
{
  if (strcmp(key, "size") == 0) {
    size = nbdkit_parse_size(value);
    return size < 0 ? -1 : 0;
  }
  if (strcmp(key, "seed") == 0) {
    seeded = true;
    return nbdkit_parse_uint64_t(key, value, &seed);
  }
  nbdkit_error("unknown parameter '%s' (random takes size=SIZE and seed=SEED)", key);
  return -1;
}

static int random_config_complete(void)
{
  if (size < 0) { nbdkit_error("the size parameter is required, e.g. 'random 1G'"); return -1; }
  if (!seeded) seed = random_seed();
  return 0;
}

static void *random_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t random_get_size(void *h) { return size; }
static int random_yes(void *h) { return 1; }

static int random_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  random_fill(seed, buf, count, offset);
  return 0;
}

static int random_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  const uint8_t *in = buf;
  uint8_t want[4096];
  for (uint32_t done = 0; done < count;) {
    uint32_t n = count - done < sizeof want ? count - done : (uint32_t)sizeof want;
    random_fill(seed, want, n, offset + done);
    if (memcmp(want, in + done, n) != 0) {
      for (uint32_t i = 0; i < n; i++)
        if (want[i] != in[done + i]) {
          nbdkit_error("a write would change byte %" PRIu64 " of the random disk: it can only be written with what "
                       "it holds", offset + done + i);
          break;
        }
      nbdkit_set_error(EIO);
      return -1;
    }
    done += n;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "random",
  .longname = "nbdcage random plugin",
  .version = NBDCAGE_VERSION,
  .description = "A disk of random bytes (the same for the same seed); writes must write what is there.",
  .config = random_config,
  .config_complete = random_config_complete,
  .config_help = "[size=]<SIZE>  (required) The size of the disk.\nseed=<SEED>    The seed (default: a random one).",
  .magic_config_key = "size",
  .open = random_open,
  .get_size = random_get_size,
  .can_write = random_yes,
  .can_multi_conn = random_yes,
  .pread = random_pread,
  .pwrite = random_pwrite,
};

NBDKIT_REGISTER_PLUGIN(plugin)
