/* split: serves several files, concatenated in command-line order, as one
 * disk: a request that spans files is split at their boundaries.  The
 * files are opened once per connection (read-write where possible) and
 * must not change size while served.  Extents come from each file's holes
 * (SEEK_DATA/SEEK_HOLE); flush and FUA fdatasync every file written. */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char **files;
static size_t nfiles;

struct piece { int fd; uint64_t start, size; };
struct handle { struct piece *pieces; bool readonly; uint64_t size; };

static void split_unload(void)
{
  for (size_t i = 0; i < nfiles; i++) free(files[i]);
  free(files);
}

static int split_config(const char *key, const char *value)
{
  if (strcmp(key, "file") != 0) {
    nbdkit_error("unknown parameter '%s' (split takes file=FILENAME, once per file)", key);
    return -1;
  }
  char **more = realloc(files, (nfiles + 1) * sizeof *files);
  if (!more) { nbdkit_error("realloc: %m"); return -1; }
  files = more;
  files[nfiles] = nbdkit_realpath(value);
  if (!files[nfiles]) return -1;
  nfiles++;
  return 0;
}

static int split_config_complete(void)
{
  if (nfiles == 0) { nbdkit_error("give at least one file, e.g. 'split disk1.img disk2.img'"); return -1; }
  return 0;
}

static void close_pieces(struct handle *h, size_t n)
{
  for (size_t i = 0; i < n; i++) close(h->pieces[i].fd);
  free(h->pieces);
  free(h);
}

static void *split_open(int readonly)
{
  struct handle *h = calloc(1, sizeof *h);
  if (!h || !(h->pieces = calloc(nfiles, sizeof *h->pieces))) { free(h); nbdkit_error("calloc: %m"); return NULL; }
  h->readonly = readonly;
  for (size_t i = 0; i < nfiles; i++) {
    int fd = h->readonly ? -1 : open(files[i], O_RDWR | O_CLOEXEC);
    if (fd == -1 && !h->readonly && (errno == EACCES || errno == EROFS || errno == EPERM)) {
      /* One file we may not write makes the whole disk read-only. */
      for (size_t j = 0; j < i; j++) close(h->pieces[j].fd);
      h->readonly = true;
      h->size = 0;
      i = (size_t)-1;
      continue;
    }
    if (fd == -1) fd = open(files[i], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd == -1 || fstat(fd, &st) == -1) {
      nbdkit_error("open: %s: %m", files[i]);
      if (fd != -1) close(fd);
      close_pieces(h, i);
      return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
      nbdkit_error("%s: not a regular file (the split plugin serves files only)", files[i]);
      close(fd);
      close_pieces(h, i);
      return NULL;
    }
    h->pieces[i] = (struct piece){fd, h->size, (uint64_t)st.st_size};
    h->size += (uint64_t)st.st_size;
  }
  return h;
}

static void split_close(void *hv) { close_pieces(hv, nfiles); }
static int64_t split_get_size(void *hv) { return (int64_t)((struct handle *)hv)->size; }
static int split_can_write(void *hv) { return !((struct handle *)hv)->readonly; }
static int split_yes(void *hv) { return 1; }
static int split_fua_native(void *hv) { return NBDKIT_FUA_NATIVE; }

/* The piece holding `offset` (which is inside the disk). */
static struct piece *find(struct handle *h, uint64_t offset)
{
  size_t lo = 0, hi = nfiles;
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (h->pieces[mid].start <= offset) lo = mid; else hi = mid;
  }
  while (lo + 1 < nfiles && h->pieces[lo].size == 0) lo++;  /* empty files hold nothing */
  return &h->pieces[lo];
}

static int split_flush(void *hv, uint32_t flags)
{
  struct handle *h = hv;
  for (size_t i = 0; i < nfiles; i++)
    if (fdatasync(h->pieces[i].fd) == -1) { nbdkit_error("fdatasync: %s: %m", files[i]); return -1; }
  return 0;
}

static int transfer(struct handle *h, char *buf, uint32_t count, uint64_t offset, bool write)
{
  while (count > 0) {
    struct piece *p = find(h, offset);
    uint64_t in = offset - p->start;
    uint32_t n = p->size - in < count ? (uint32_t)(p->size - in) : count;
    ssize_t r = write ? pwrite(p->fd, buf, n, (off_t)in) : pread(p->fd, buf, n, (off_t)in);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { nbdkit_error("%s: %s: %m", write ? "pwrite" : "pread", files[p - h->pieces]); return -1; }
    if (r == 0) { memset(buf, 0, n); r = n; }  /* a file that shrank: zeroes */
    buf += r; count -= (uint32_t)r; offset += (uint64_t)r;
  }
  return 0;
}

static int split_pread(void *hv, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  return transfer(hv, buf, count, offset, false);
}

static int split_pwrite(void *hv, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  if (transfer(hv, (char *)buf, count, offset, true) == -1) return -1;
  return (flags & NBDKIT_FLAG_FUA) ? split_flush(hv, 0) : 0;
}

static int split_extents(void *hv, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = hv;
  uint64_t end = offset + count;
  while (offset < end) {
    struct piece *p = find(h, offset);
    uint64_t in = offset - p->start, stop = p->size < end - p->start ? p->size : end - p->start;
    off_t data = lseek(p->fd, (off_t)in, SEEK_DATA);
    uint64_t next;
    uint32_t type;
    if (data == -1 && errno != ENXIO) { type = 0; next = stop; }  /* no SEEK_DATA here: all data */
    else if (data == -1 || (uint64_t)data >= stop) { type = NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO; next = stop; }
    else if ((uint64_t)data > in) { type = NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO; next = (uint64_t)data; }
    else {
      off_t hole = lseek(p->fd, (off_t)in, SEEK_HOLE);
      type = 0;
      next = hole == -1 || (uint64_t)hole > stop ? stop : (uint64_t)hole;
      if (next <= in) next = stop;
    }
    if (nbdkit_add_extent(extents, offset, next - in, type) == -1) return -1;
    offset = p->start + next;
    if (flags & NBDKIT_FLAG_REQ_ONE) break;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "split",
  .longname = "nbdcage split plugin",
  .version = NBDCAGE_VERSION,
  .description = "Several files, concatenated, served as one disk.",
  .unload = split_unload,
  .config = split_config,
  .config_complete = split_config_complete,
  .config_help = "[file=]<FILENAME>  (required, repeatable) The files, in order.",
  .magic_config_key = "file",
  .open = split_open,
  .close = split_close,
  .get_size = split_get_size,
  .can_write = split_can_write,
  .can_flush = split_yes,
  .can_fua = split_fua_native,
  .can_extents = split_yes,
  .can_multi_conn = split_yes,
  .pread = split_pread,
  .pwrite = split_pwrite,
  .flush = split_flush,
  .extents = split_extents,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
