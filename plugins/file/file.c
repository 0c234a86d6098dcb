/* file: serves a regular file or a block device (file=), or each regular
 * file and block device in a directory by export name (dir=), with
 * nbdkit's fadvise= and cache= hints.
 *
 * FLUSH and FUA use fdatasync; trim punches holes and zero uses
 * fallocate(ZERO_RANGE or PUNCH_HOLE) where the file system allows, falling
 * back to writing zeroes; extents come from SEEK_DATA/SEEK_HOLE.  A file we
 * may not write is served read-only.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static char *filename;   /* file= */
static char *directory;  /* dir= */
static int given_fd = -1;     /* fd=: the file, already open */
static int given_dirfd = -1;  /* dirfd=: the directory, already open */
static int advice = POSIX_FADV_NORMAL;  /* fadvise= */
static bool cache_none;  /* cache=none: keep what was served out of the page cache */

struct handle {
  int fd;
  char *path;
  bool readonly;
  bool is_block;
  bool can_punch;  /* cleared when the file system says no */
  bool can_zero_range;
};

static void file_unload(void) { free(filename); free(directory); }

static int file_config(const char *key, const char *value)
{
  if (strcmp(key, "file") == 0 || strcmp(key, "dir") == 0) {
    char **to = key[0] == 'f' ? &filename : &directory;
    free(*to);
    *to = nbdkit_realpath(value);
    return *to ? 0 : -1;
  }
  if (strcmp(key, "fadvise") == 0) {
    if (strcmp(value, "normal") == 0) advice = POSIX_FADV_NORMAL;
    else if (strcmp(value, "random") == 0) advice = POSIX_FADV_RANDOM;
    else if (strcmp(value, "sequential") == 0) advice = POSIX_FADV_SEQUENTIAL;
    else { nbdkit_error("fadvise=%s: it must be normal, random or sequential", value); return -1; }
    return 0;
  }
  if (strcmp(key, "cache") == 0) {
    if (strcmp(value, "default") == 0) cache_none = false;
    else if (strcmp(value, "none") == 0) cache_none = true;
    else { nbdkit_error("cache=%s: it must be default or none", value); return -1; }
    return 0;
  }
  if (strcmp(key, "fd") == 0 || strcmp(key, "dirfd") == 0) {
    /* nbdcage hands the plugin host the descriptors named so (renumbered). */
    int fd;
    if (nbdkit_parse_int(key, value, &fd) == -1) return -1;
    struct stat st;
    if (fd <= 2 || fstat(fd, &st) == -1) {
      nbdkit_error("%s=%s: descriptor %s is not open here (give nbdcage an open descriptor, e.g. 3<disk.img)",
                   key, value, value);
      return -1;
    }
    if (key[0] == 'd' && !S_ISDIR(st.st_mode)) { nbdkit_error("dirfd=%s: not a directory", value); return -1; }
    if (key[0] == 'f' && S_ISDIR(st.st_mode)) { nbdkit_error("fd=%s: a directory (use dirfd=)", value); return -1; }
    *(key[0] == 'f' ? &given_fd : &given_dirfd) = fd;
    return 0;
  }
  nbdkit_error("unknown parameter '%s' (file takes file=FILENAME or dir=DIRECTORY, fadvise=, cache=)", key);
  return -1;
}

static int file_config_complete(void)
{
  int modes = !!filename + !!directory + (given_fd >= 0) + (given_dirfd >= 0);
  if (modes > 1) {
    nbdkit_error("give one of file=, dir=, fd= and dirfd=");
    return -1;
  }
  if (modes == 0) {
    nbdkit_error("the file parameter is required, e.g. 'file disk.img' or 'file file=disk.img' "
                 "(or dir=DIRECTORY to serve the files in it by export name)");
    return -1;
  }

  struct stat st;
  if (directory && (stat(directory, &st) == -1 || !S_ISDIR(st.st_mode))) {
    nbdkit_error("dir=%s: not a directory", directory);
    return -1;
  }
  return 0;
}

/* dir=: what a name in the directory serves (following symbolic links),
 * if anything: regular files and block devices only. */
static bool servable(const char *name)
{
  struct stat st;
  if (given_dirfd >= 0) return fstatat(given_dirfd, name, &st, 0) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", directory, name) >= (int)sizeof path) return false;
  return stat(path, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

static int file_list_exports(int readonly, int is_tls, struct nbdkit_exports *exports)
{
  if (!directory && given_dirfd < 0) return nbdkit_use_default_export(exports);
  /* A dirfd is read through a copy of it: closedir closes what it reads. */
  DIR *d = given_dirfd >= 0 ? fdopendir(openat(given_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC))
                            : opendir(directory);
  if (!d) { nbdkit_error("opendir: %s: %m", directory ? directory : "dirfd="); return -1; }
  struct dirent *e;
  int r = 0;
  while (r == 0 && (e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && servable(e->d_name))
      r = nbdkit_add_export(exports, e->d_name, NULL);
  closedir(d);
  return r;
}

/* The path this connection serves: file=, or dir=/EXPORTNAME (for the
 * descriptors: "fd=N", or the export name inside dirfd=). */
static char *path_to_open(void)
{
  if (given_fd >= 0) return strdup("fd=");
  if (!directory && given_dirfd < 0) return strdup(filename);
  const char *name = nbdkit_export_name();
  if (!name || !*name) {
    nbdkit_error("dir=: give an export name (NBD_OPT_LIST lists the files): the default export is refused");
    return NULL;
  }
  if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    nbdkit_error("dir=: export name '%s' is refused: it must name a file in the directory", name);
    return NULL;
  }
  if (!servable(name)) {
    nbdkit_error("dir=: there is no file '%s' in %s", name, directory);
    return NULL;
  }
  char *path;
  if (given_dirfd >= 0) return strdup(name);
  if (asprintf(&path, "%s/%s", directory, name) == -1) return NULL;
  return path;
}

static void *file_open(int readonly)
{
  struct handle *h = calloc(1, sizeof *h);
  if (!h) { nbdkit_error("calloc: %m"); return NULL; }
  h->path = path_to_open();
  if (!h->path) { free(h); return NULL; }
  h->fd = -1;
  if (given_fd >= 0) {
    /* Each connection its own copy; writable if the descriptor is. */
    h->fd = fcntl(given_fd, F_DUPFD_CLOEXEC, 3);
    h->readonly = readonly || (fcntl(given_fd, F_GETFL) & O_ACCMODE) == O_RDONLY;
  } else {
    int at = given_dirfd >= 0 ? given_dirfd : AT_FDCWD;
    if (!readonly) h->fd = openat(at, h->path, O_RDWR | O_CLOEXEC);
    if (h->fd == -1 && (readonly || errno == EACCES || errno == EROFS || errno == EPERM)) {
      h->fd = openat(at, h->path, O_RDONLY | O_CLOEXEC);
      h->readonly = true;
    }
  }
  struct stat st;
  if (h->fd == -1 || fstat(h->fd, &st) == -1) {
    nbdkit_error("open: %s: %m", h->path);
    if (h->fd != -1) close(h->fd);
    free(h->path);
    free(h);
    return NULL;
  }
  h->is_block = S_ISBLK(st.st_mode);
  h->can_punch = h->can_zero_range = !h->is_block;
  (void)posix_fadvise(h->fd, 0, 0, advice);  /* a hint: the kernel may ignore it */
  return h;
}

static void file_close(void *hv)
{
  struct handle *h = hv;
  close(h->fd);
  free(h->path);
  free(h);
}

static int64_t file_get_size(void *hv)
{
  struct handle *h = hv;
  if (h->is_block) {
    uint64_t size;
    if (ioctl(h->fd, BLKGETSIZE64, &size) == -1) { nbdkit_error("BLKGETSIZE64: %m"); return -1; }
    return (int64_t)size;
  }
  struct stat st;
  if (fstat(h->fd, &st) == -1) { nbdkit_error("fstat: %m"); return -1; }
  return st.st_size;
}

static int file_can_write(void *hv) { return !((struct handle *)hv)->readonly; }
static int file_yes(void *hv) { return 1; }
static int file_can_fua(void *hv) { return NBDKIT_FUA_NATIVE; }
static int file_can_cache(void *hv) { return NBDKIT_CACHE_NATIVE; }
static int file_can_fast_zero(void *hv) { return ((struct handle *)hv)->can_zero_range; }

static int file_flush(void *hv, uint32_t flags)
{
  struct handle *h = hv;
  if (fdatasync(h->fd) == -1) { nbdkit_error("fdatasync: %m"); return -1; }
  return 0;
}

static int file_pread(void *hv, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  char *p = buf;
  uint64_t start = offset;
  uint32_t total = count;
  while (count > 0) {
    ssize_t r = pread(h->fd, p, count, (off_t)offset);
    if (r == -1) { if (errno == EINTR) continue; nbdkit_error("pread: %m"); return -1; }
    if (r == 0) { /* past the end of a file that shrank: zeroes */
      memset(p, 0, count);
      break;
    }
    p += r; count -= (uint32_t)r; offset += (uint64_t)r;
  }
  if (cache_none) (void)posix_fadvise(h->fd, (off_t)start, total, POSIX_FADV_DONTNEED);
  return 0;
}

static int file_pwrite(void *hv, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  const char *p = buf;
  uint64_t start = offset;
  uint32_t total = count;
  while (count > 0) {
    ssize_t r = pwrite(h->fd, p, count, (off_t)offset);
    if (r == -1) { if (errno == EINTR) continue; nbdkit_error("pwrite: %m"); return -1; }
    p += r; count -= (uint32_t)r; offset += (uint64_t)r;
  }
  if (cache_none) {
    /* Written back first: the kernel drops only clean pages. */
    (void)sync_file_range(h->fd, (off_t)start, total,
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    (void)posix_fadvise(h->fd, (off_t)start, total, POSIX_FADV_DONTNEED);
  }
  if ((flags & NBDKIT_FLAG_FUA) && file_flush(hv, 0) == -1) return -1;
  return 0;
}

static bool fs_says_no(int err) { return err == EOPNOTSUPP || err == ENOSYS || err == EINVAL || err == ENODEV; }

static int file_trim(void *hv, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  if (h->can_punch &&
      fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, count) == -1) {
    if (!fs_says_no(errno)) { nbdkit_error("fallocate: %m"); return -1; }
    h->can_punch = false; /* trim is advisory: doing nothing is correct */
  }
  if ((flags & NBDKIT_FLAG_FUA) && file_flush(hv, 0) == -1) return -1;
  return 0;
}

static int write_zeroes(struct handle *h, uint32_t count, uint64_t offset)
{
  static const char zeroes[65536];
  while (count > 0) {
    uint32_t n = count < sizeof zeroes ? count : (uint32_t)sizeof zeroes;
    if (file_pwrite(h, zeroes, n, offset, 0) == -1) return -1;
    count -= n; offset += n;
  }
  return 0;
}

static int file_zero(void *hv, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  int done = 0;
  if (h->can_punch && (flags & NBDKIT_FLAG_MAY_TRIM)) {
    if (fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, count) == 0) done = 1;
    else if (fs_says_no(errno)) h->can_punch = false;
    else { nbdkit_error("fallocate: %m"); return -1; }
  }
  if (!done && h->can_zero_range) {
    if (fallocate(h->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)offset, count) == 0) done = 1;
    else if (fs_says_no(errno)) h->can_zero_range = false;
    else { nbdkit_error("fallocate: %m"); return -1; }
  }
  if (!done) {
    if (flags & NBDKIT_FLAG_FAST_ZERO) { nbdkit_set_error(ENOTSUP); return -1; }
    if (write_zeroes(h, count, offset) == -1) return -1;
  }
  if ((flags & NBDKIT_FLAG_FUA) && file_flush(hv, 0) == -1) return -1;
  return 0;
}

static int file_can_extents(void *hv)
{
  struct handle *h = hv;
  /* Probe once: a file system without SEEK_HOLE support answers EINVAL. */
  return !h->is_block && lseek(h->fd, 0, SEEK_DATA) != -1 ? 1 : (errno == ENXIO ? 1 : 0);
}

static int file_extents(void *hv, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = hv;
  uint64_t end = offset + count;
  while (offset < end) {
    off_t data = lseek(h->fd, (off_t)offset, SEEK_DATA);
    if (data == -1 && errno != ENXIO) { nbdkit_error("lseek SEEK_DATA: %m"); return -1; }
    uint64_t hole_end = data == -1 ? end : (uint64_t)data;
    if (hole_end > offset) {
      uint64_t len = (hole_end < end ? hole_end : end) - offset;
      if (nbdkit_add_extent(extents, offset, len, NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1) return -1;
      offset += len;
      if (flags & NBDKIT_FLAG_REQ_ONE) return 0;
      continue;
    }
    off_t hole = lseek(h->fd, (off_t)offset, SEEK_HOLE);
    if (hole == -1) { nbdkit_error("lseek SEEK_HOLE: %m"); return -1; }
    uint64_t data_end = (uint64_t)hole < end ? (uint64_t)hole : end;
    if (data_end <= offset) data_end = end; /* defensive: never loop forever */
    if (nbdkit_add_extent(extents, offset, data_end - offset, 0) == -1) return -1;
    offset = data_end;
    if (flags & NBDKIT_FLAG_REQ_ONE) return 0;
  }
  return 0;
}

static int file_cache(void *hv, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  /* A hint only: failing to prefetch is not an error. */
  (void)posix_fadvise(h->fd, (off_t)offset, count, POSIX_FADV_WILLNEED);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "file",
  .longname = "nbdcage file plugin",
  .version = NBDCAGE_VERSION,
  .unload = file_unload,
  .config = file_config,
  .config_complete = file_config_complete,
  .config_help = "file=<FILENAME>  The file or block device to serve (this, dir=, fd= or dirfd= is required).\n"
                 "dir=<DIRECTORY>  Serve the files and block devices in DIRECTORY by export name.\n"
                 "fd=<FD>, dirfd=<FD>  The same, open on a descriptor given to nbdcage (3<disk.img).\n"
                 "fadvise=normal|random|sequential  How the file will be read (a hint to the kernel).\n"
                 "cache=default|none  none: keep what is served out of the page cache.",
  .list_exports = file_list_exports,
  .magic_config_key = "file",
  .open = file_open,
  .close = file_close,
  .get_size = file_get_size,
  .can_write = file_can_write,
  .can_flush = file_yes,
  .can_trim = file_yes,
  .can_zero = file_yes,
  .can_fast_zero = file_can_fast_zero,
  .can_fua = file_can_fua,
  .can_multi_conn = file_yes,
  .can_extents = file_can_extents,
  .can_cache = file_can_cache,
  .pread = file_pread,
  .pwrite = file_pwrite,
  .flush = file_flush,
  .trim = file_trim,
  .zero = file_zero,
  .extents = file_extents,
  .cache = file_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
