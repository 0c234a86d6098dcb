/* tar: serves one member of an uncompressed tar file, in place: reads and
 * writes go straight to the member's bytes inside the archive (its size
 * cannot change), as the seed form `tar tar=data.tar file=disk.img` asks.
 *
 * The archive is indexed once, at configuration: ustar and GNU headers,
 * GNU long names ('L') and POSIX pax headers ('x': path and size
 * override the header's), sizes in octal or base-256.  Every header's
 * checksum is verified, so a file that is not a tar archive, or one that
 * is damaged, is refused with a reason, never served wrong.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { kBlock = 512 };

static char *tarfile;       /* tar= */
static char *member;        /* file= (or tar-entry=) */
static uint64_t data_offset;  /* where the member's bytes start in the archive */
static uint64_t data_size;

struct handle {
  int fd;
  bool readonly;
};

static void tar_unload(void) { free(tarfile); free(member); }

static int tar_config(const char *key, const char *value)
{
  if (strcmp(key, "tar") == 0) {
    free(tarfile);
    tarfile = nbdkit_realpath(value);
    return tarfile ? 0 : -1;
  }
  if (strcmp(key, "file") == 0 || strcmp(key, "tar-entry") == 0) {
    free(member);
    member = strdup(value);
    return member ? 0 : -1;
  }
  nbdkit_error("unknown parameter '%s' (tar takes tar=ARCHIVE and file=MEMBER)", key);
  return -1;
}

/* A header number: octal digits (NUL or space ended), or GNU base-256
 * when the first byte's top bit is set. */
static bool header_number(const unsigned char *field, size_t len, uint64_t *out)
{
  uint64_t v = 0;
  if (field[0] & 0x80) {
    if (field[0] != 0x80) return false;  /* negative, or too large */
    for (size_t i = 1; i < len; i++) {
      if (v >> 56) return false;
      v = (v << 8) | field[i];
    }
    *out = v;
    return true;
  }
  size_t i = 0;
  while (i < len && field[i] == ' ') i++;
  bool digits = false;
  for (; i < len && field[i] >= '0' && field[i] <= '7'; i++) {
    if (v >> 60) return false;
    v = v * 8 + (uint64_t)(field[i] - '0');
    digits = true;
  }
  if (i < len && field[i] != '\0' && field[i] != ' ') return false;
  *out = digits ? v : 0;
  return true;
}

/* The checksum: the header's bytes summed, its own field taken as spaces. */
static bool checksum_ok(const unsigned char *h)
{
  uint64_t want;
  if (!header_number(h + 148, 8, &want)) return false;
  uint64_t sum = 0;
  for (int i = 0; i < kBlock; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
  return sum == want;
}

static bool all_zero(const unsigned char *b, size_t n)
{
  for (size_t i = 0; i < n; i++) if (b[i]) return false;
  return true;
}

static int read_exact(int fd, void *buf, size_t n, uint64_t at)
{
  char *p = buf;
  while (n > 0) {
    ssize_t r = pread(fd, p, n, (off_t)at);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r; n -= (size_t)r; at += (uint64_t)r;
  }
  return 0;
}

/* pax records "LEN KEY=VALUE\n": path and size, when given. */
static int pax_records(const char *data, size_t len, char **path, uint64_t *size, bool *has_size)
{
  size_t at = 0;
  while (at < len) {
    char *end;
    unsigned long rec = strtoul(data + at, &end, 10);
    if (end == data + at || *end != ' ' || rec == 0 || rec > len - at) return -1;
    const char *kv = end + 1, *stop = data + at + rec - 1;  /* stop: the '\n' */
    if (*stop != '\n') return -1;
    const char *eq = memchr(kv, '=', (size_t)(stop - kv));
    if (!eq) return -1;
    size_t klen = (size_t)(eq - kv);
    if (klen == 4 && memcmp(kv, "path", 4) == 0) {
      free(*path);
      *path = strndup(eq + 1, (size_t)(stop - eq - 1));
    } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
      char buf[32];
      size_t vl = (size_t)(stop - eq - 1);
      if (vl == 0 || vl >= sizeof buf) return -1;
      memcpy(buf, eq + 1, vl);
      buf[vl] = '\0';
      char *e2;
      *size = strtoull(buf, &e2, 10);
      if (*e2) return -1;
      *has_size = true;
    }
    at += rec;
  }
  return 0;
}

/* Walks the archive's headers until `member`; sets data_offset and size. */
static int index_archive(int fd, uint64_t archive_size)
{
  unsigned char h[kBlock];
  uint64_t at = 0;
  char *long_name = NULL, *pax_path = NULL;
  uint64_t pax_size = 0;
  bool pax_has_size = false;
  int r = -1;
  while (at + kBlock <= archive_size) {
    if (read_exact(fd, h, kBlock, at) == -1) { nbdkit_error("tar=%s: read: %m", tarfile); goto out; }
    if (all_zero(h, kBlock)) break;  /* the end */
    if (!checksum_ok(h)) {
      nbdkit_error("tar=%s: the header at offset %" PRIu64 " is damaged, or this is not a tar archive "
                   "(a compressed one must be uncompressed first)", tarfile, at);
      goto out;
    }
    uint64_t size;
    if (!header_number(h + 124, 12, &size)) {
      nbdkit_error("tar=%s: the header at offset %" PRIu64 " has a size that cannot be read", tarfile, at);
      goto out;
    }
    char type = (char)h[156];
    uint64_t data = at + kBlock;
    if (pax_has_size && type != 'x' && type != 'g' && type != 'L' && type != 'K') size = pax_size;
    if (size > archive_size || data > archive_size - size) {
      nbdkit_error("tar=%s: the archive is truncated (a member at offset %" PRIu64 " runs past its end)",
                   tarfile, at);
      goto out;
    }
    uint64_t next = data + (size + kBlock - 1) / kBlock * kBlock;
    if (type == 'L' || type == 'x') {  /* metadata for the next header */
      if (size > 1 << 20) { nbdkit_error("tar=%s: a %c header of %" PRIu64 " bytes is too large", tarfile, type, size); goto out; }
      char *buf = malloc(size + 1);
      if (!buf || read_exact(fd, buf, size, data) == -1) { free(buf); nbdkit_error("tar=%s: read: %m", tarfile); goto out; }
      buf[size] = '\0';
      if (type == 'L') {
        free(long_name);
        long_name = buf;
      } else {
        int pr = pax_records(buf, size, &pax_path, &pax_size, &pax_has_size);
        free(buf);
        if (pr == -1) { nbdkit_error("tar=%s: a pax header at offset %" PRIu64 " is malformed", tarfile, at); goto out; }
      }
      at = next;
      continue;
    }
    char name[256 + 1 + 100 + 1];
    if (pax_path) {
      snprintf(name, sizeof name, "%s", pax_path);
    } else if (long_name) {
      snprintf(name, sizeof name, "%s", long_name);
    } else if (memcmp(h + 257, "ustar", 5) == 0 && h[345] != '\0') {
      snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
    } else {
      snprintf(name, sizeof name, "%.100s", (const char *)h);
    }
    bool regular = type == '0' || type == '\0' || type == '7';
    if (strcmp(name, member) == 0) {
      if (!regular) {
        nbdkit_error("tar=%s: member '%s' is not a regular file (type '%c')", tarfile, member, type);
        goto out;
      }
      data_offset = data;
      data_size = size;
      r = 0;
      goto out;
    }
    free(long_name); long_name = NULL;
    free(pax_path); pax_path = NULL;
    pax_has_size = false;
    at = next;
  }
  nbdkit_error("tar=%s: there is no member '%s' (tar tf lists them; the name must match exactly)",
               tarfile, member);
out:
  free(long_name);
  free(pax_path);
  return r;
}

static int tar_config_complete(void)
{
  if (!tarfile || !member) {
    nbdkit_error("tar needs tar=ARCHIVE and file=MEMBER, e.g. 'tar tar=data.tar file=disk.img'");
    return -1;
  }
  int fd = open(tarfile, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd == -1 || fstat(fd, &st) == -1) {
    nbdkit_error("tar=%s: %m", tarfile);
    if (fd != -1) close(fd);
    return -1;
  }
  int r = index_archive(fd, (uint64_t)st.st_size);
  close(fd);
  if (r == 0) nbdkit_debug("tar: %s is %" PRIu64 " bytes at offset %" PRIu64, member, data_size, data_offset);
  return r;
}

static void *tar_open(int readonly)
{
  struct handle *h = calloc(1, sizeof *h);
  if (!h) { nbdkit_error("calloc: %m"); return NULL; }
  h->fd = readonly ? -1 : open(tarfile, O_RDWR | O_CLOEXEC);
  if (h->fd == -1 && (readonly || errno == EACCES || errno == EROFS || errno == EPERM)) {
    h->fd = open(tarfile, O_RDONLY | O_CLOEXEC);
    h->readonly = true;
  }
  if (h->fd == -1) {
    nbdkit_error("open: %s: %m", tarfile);
    free(h);
    return NULL;
  }
  return h;
}

static void tar_close(void *hv)
{
  struct handle *h = hv;
  close(h->fd);
  free(h);
}

static int64_t tar_get_size(void *hv) { return (int64_t)data_size; }
static int tar_can_write(void *hv) { return !((struct handle *)hv)->readonly; }
static int tar_yes(void *hv) { return 1; }
static int tar_can_fua(void *hv) { return NBDKIT_FUA_NATIVE; }

static int tar_flush(void *hv, uint32_t flags)
{
  if (fdatasync(((struct handle *)hv)->fd) == -1) { nbdkit_error("fdatasync: %m"); return -1; }
  return 0;
}

static int tar_pread(void *hv, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  if (read_exact(h->fd, buf, count, data_offset + offset) == -1) {
    nbdkit_error("pread: %s: %m", tarfile);
    return -1;
  }
  return 0;
}

static int tar_pwrite(void *hv, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  const char *p = buf;
  uint64_t at = data_offset + offset;
  while (count > 0) {
    ssize_t r = pwrite(h->fd, p, count, (off_t)at);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { nbdkit_error("pwrite: %s: %m", tarfile); return -1; }
    p += r; count -= (uint32_t)r; at += (uint64_t)r;
  }
  if ((flags & NBDKIT_FLAG_FUA) && tar_flush(hv, 0) == -1) return -1;
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "tar",
  .longname = "nbdcage tar plugin",
  .version = NBDCAGE_VERSION,
  .description = "Serves a member of an uncompressed tar archive, read-write in place.",
  .unload = tar_unload,
  .config = tar_config,
  .config_complete = tar_config_complete,
  .config_help = "tar=<ARCHIVE>   (required) The uncompressed tar archive.\n"
                 "file=<MEMBER>   (required) The member to serve, as 'tar tf' names it (also tar-entry=).",
  .open = tar_open,
  .close = tar_close,
  .get_size = tar_get_size,
  .can_write = tar_can_write,
  .can_flush = tar_yes,
  .can_fua = tar_can_fua,
  .can_multi_conn = tar_yes,
  .pread = tar_pread,
  .pwrite = tar_pwrite,
  .flush = tar_flush,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
