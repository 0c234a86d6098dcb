/* example1: a small read-only disk with a real MBR partition table.
 *
 * The disk is 100 MiB.  Sector 0 holds an MBR (disk identifier 0x6e626463,
 * "nbdc") with one Linux partition from sector 2048 to the end; the first
 * sector of that partition holds a greeting.  Everything else reads as
 * zeroes.  The image is composed in memory at load time, so the plugin
 * needs no data file.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <string.h>

#define DISK_SIZE (100 * 1024 * 1024)
#define SECTOR 512
#define PART_START 2048
#define GREETING "Hello from the nbdcage example1 plugin.\n"

static unsigned char mbr[SECTOR];
static unsigned char greeting[SECTOR];

static void put_le32(unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void example1_load(void)
{
  put_le32(mbr + 440, 0x6e626463);          /* disk identifier */
  unsigned char *entry = mbr + 446;          /* first partition entry */
  entry[0] = 0x00;                           /* not bootable */
  entry[1] = 0xfe; entry[2] = 0xff; entry[3] = 0xff; /* CHS: use LBA */
  entry[4] = 0x83;                           /* Linux */
  entry[5] = 0xfe; entry[6] = 0xff; entry[7] = 0xff;
  put_le32(entry + 8, PART_START);
  put_le32(entry + 12, DISK_SIZE / SECTOR - PART_START);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  memcpy(greeting, GREETING, sizeof GREETING - 1);
}

static void *example1_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t example1_get_size(void *h) { return DISK_SIZE; }
static int example1_yes(void *h) { return 1; }

/* Copies the part of `sector` (at disk offset `at`) that overlaps the read. */
static void overlay(unsigned char *buf, uint32_t count, uint64_t offset,
                    const unsigned char *sector, uint64_t at)
{
  uint64_t lo = offset > at ? offset : at;
  uint64_t hi = offset + count < at + SECTOR ? offset + count : at + SECTOR;
  if (lo < hi) memcpy(buf + (lo - offset), sector + (lo - at), hi - lo);
}

static int example1_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  memset(buf, 0, count);
  overlay(buf, count, offset, mbr, 0);
  overlay(buf, count, offset, greeting, (uint64_t)PART_START * SECTOR);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "example1",
  .longname = "nbdcage example1 plugin",
  .version = NBDCAGE_VERSION,
  .description = "A 100 MiB read-only disk with an MBR partition table.",
  .load = example1_load,
  .open = example1_open,
  .get_size = example1_get_size,
  .can_multi_conn = example1_yes,
  .pread = example1_pread,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
