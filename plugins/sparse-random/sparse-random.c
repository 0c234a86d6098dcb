/* sparse-random: a disk shaped like a virtual machine's, runs of data
 * between long holes, the same for the same seed=: for benchmarking copy
 * tools, which should skip the holes (extents report them).  percent= of
 * the disk holds data, in runs of about runlength= bytes; each data block
 * repeats one random non-zero byte, or with random-content=true is all
 * random.  As with the random plugin, a write must write what is there.
 *
 * The disk is cut into runs of `runlength` bytes; a run holds data or not
 * by a draw of the seed and its index, so that on average `percent` of
 * them do; within a data run, 4 KiB blocks each repeat a byte of their
 * own.  Everything is computed from the offset: no state, any order.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../random/random-bytes.h"

enum { kBlock = 4096 };

static int64_t size = -1;
static uint64_t seed;
static bool seeded;
static unsigned percent = 10;
static int64_t runlength = 16 * 1024 * 1024;
static bool random_content;

static int sr_config(const char *key, const char *value)
{
  if (strcmp(key, "size") == 0) {
    size = nbdkit_parse_size(value);
    return size < 0 ? -1 : 0;
  }
  if (strcmp(key, "seed") == 0) {
    seeded = true;
    return nbdkit_parse_uint64_t(key, value, &seed);
  }
  if (strcmp(key, "percent") == 0) {
    if (nbdkit_parse_unsigned(key, value, &percent) == -1) return -1;
    if (percent > 100) { nbdkit_error("percent=%s: it must be between 0 and 100", value); return -1; }
    return 0;
  }
  if (strcmp(key, "runlength") == 0) {
    runlength = nbdkit_parse_size(value);
    if (runlength < kBlock) {
      if (runlength >= 0) nbdkit_error("runlength=%s: it must be at least %d bytes", value, kBlock);
      return -1;
    }
    runlength = runlength / kBlock * kBlock;
    return 0;
  }
  if (strcmp(key, "random-content") == 0) {
    int b = nbdkit_parse_bool(value);
    if (b == -1) return -1;
    random_content = b;
    return 0;
  }
  nbdkit_error("unknown parameter '%s' (sparse-random takes size=, seed=, percent=, runlength=, random-content=)", key);
  return -1;
}

static int sr_config_complete(void)
{
  if (size < 0) { nbdkit_error("the size parameter is required, e.g. 'sparse-random 16G'"); return -1; }
  if (!seeded) seed = random_seed();
  return 0;
}

/* Whether the run holding `offset` is data. */
static bool is_data(uint64_t offset)
{
  uint64_t run = offset / (uint64_t)runlength;
  return random_mix(seed ^ 0x5ca1ab1eULL ^ random_mix(run)) % 100 < percent;
}

/* The bytes of [offset, offset+count), all within one run. */
static void fill_run(uint8_t *buf, uint32_t count, uint64_t offset)
{
  if (!is_data(offset)) {
    memset(buf, 0, count);
    return;
  }
  if (random_content) {
    random_fill(seed, buf, count, offset);
    return;
  }
  while (count > 0) {
    uint64_t block = offset / kBlock;
    uint32_t n = (uint32_t)((block + 1) * kBlock - offset);
    if (n > count) n = count;
    uint8_t b = (uint8_t)(random_mix(seed ^ random_mix(block)) % 255 + 1);  /* never zero */
    memset(buf, b, n);
    buf += n;
    count -= n;
    offset += n;
  }
}

static void fill(uint8_t *buf, uint32_t count, uint64_t offset)
{
  while (count > 0) {
    uint64_t end = (offset / (uint64_t)runlength + 1) * (uint64_t)runlength;
    uint32_t n = end - offset < count ? (uint32_t)(end - offset) : count;
    fill_run(buf, n, offset);
    buf += n;
    count -= n;
    offset += n;
  }
}

static void *sr_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t sr_get_size(void *h) { return size; }
static int sr_yes(void *h) { return 1; }

static int sr_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  fill(buf, count, offset);
  return 0;
}

static int sr_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  const uint8_t *in = buf;
  uint8_t want[4096];
  for (uint32_t done = 0; done < count;) {
    uint32_t n = count - done < sizeof want ? count - done : (uint32_t)sizeof want;
    fill(want, n, offset + done);
    if (memcmp(want, in + done, n) != 0) {
      nbdkit_error("a write would change the sparse-random disk near byte %" PRIu64 ": it can only be written "
                   "with what it holds", offset + done);
      nbdkit_set_error(EIO);
      return -1;
    }
    done += n;
  }
  return 0;
}

static int sr_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *extents)
{
  uint64_t end = offset + count;
  while (offset < end) {
    uint64_t runEnd = (offset / (uint64_t)runlength + 1) * (uint64_t)runlength;
    if (runEnd > end) runEnd = end;
    bool data = is_data(offset);
    if (nbdkit_add_extent(extents, offset, runEnd - offset, data ? 0 : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1)
      return -1;
    if (flags & NBDKIT_FLAG_REQ_ONE) break;
    offset = runEnd;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "sparse-random",
  .longname = "nbdcage sparse random plugin",
  .version = NBDCAGE_VERSION,
  .description = "Runs of random data between holes, shaped like a virtual machine's disk.",
  .config = sr_config,
  .config_complete = sr_config_complete,
  .config_help = "[size=]<SIZE>       (required) The size of the disk.\n"
                 "seed=<SEED>         The seed (default: a random one).\n"
                 "percent=<N>         How much of the disk holds data (default 10).\n"
                 "runlength=<SIZE>    The length of a run (default 16M).\n"
                 "random-content=true Every byte random (default: a random byte repeated per 4 KiB block).",
  .magic_config_key = "size",
  .open = sr_open,
  .get_size = sr_get_size,
  .can_write = sr_yes,
  .can_extents = sr_yes,
  .can_multi_conn = sr_yes,
  .pread = sr_pread,
  .pwrite = sr_pwrite,
  .extents = sr_extents,
};

NBDKIT_REGISTER_PLUGIN(plugin)
