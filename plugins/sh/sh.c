/* sh and eval: plugins written as shell scripts, in nbdkit's shell plugin
 * protocol.  Each callback runs the script once, as
 *
 *     SCRIPT METHOD ARGS...            (sh: the script given, or - from stdin)
 *     /bin/sh -c CODE eval METHOD ARGS... (eval: METHOD=CODE on the command line)
 *
 * with $tmpdir naming a private directory that lives as long as the
 * plugin; its stdout is the answer (a size, a handle, the data read), its
 * stdin the data written; its exit status says how it went: 0 done, 1 or
 * 8-127 failed (stderr: an errno name, then a message), 2 not provided
 * (the default behaviour), 3 false.  4-7 are reserved, and taken as 1.
 *
 * Built twice from this file: EVAL defined for the eval plugin.  Both run
 * programs, which nbdcage's sandbox policy allows them by name.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { kOk = 0, kError = 1, kMissing = 2, kFalse = 3 };

static char tmpdir[64];       /* $tmpdir */
static char *script;          /* sh: the script's path */
static char **env;            /* environ + tmpdir=, made once */
static int thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS;

#ifdef EVAL
/* eval: METHOD=CODE pairs; missing= answers methods with no code. */
struct code { char *method, *text; };
static struct code *codes;
static size_t ncodes;
static char *missing;
static const char *code_of(const char *method)
{
  for (size_t i = 0; i < ncodes; i++)
    if (strcmp(codes[i].method, method) == 0) return codes[i].text;
  return missing;
}
#endif

/* A growing buffer of a child's output. */
struct buf { char *data; size_t len, cap; };

static int buf_add(struct buf *b, const char *p, size_t n)
{
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

/* Runs METHOD with its arguments (a NULL-ended list), `in` as its stdin;
 * its stdout into *out (may be NULL), its stderr kept for errors.
 * Returns its exit status (kOk, kError, kMissing, kFalse), or kError with
 * the error already set when it could not run. */
static int call(const char *method, const char *const *args, const void *in, size_t inlen, struct buf *out)
{
  const char *argv[16];
  size_t argc = 0;
#ifdef EVAL
  const char *text = code_of(method);
  if (!text) return kMissing;
  argv[argc++] = "/bin/sh";
  argv[argc++] = "-c";
  argv[argc++] = text;
  argv[argc++] = "eval";  /* $0 */
#else
  argv[argc++] = script;
#endif
  argv[argc++] = method;
  for (size_t i = 0; args && args[i] && argc < 15; i++) argv[argc++] = args[i];
  argv[argc] = NULL;

  int pin[2], pout[2], perr[2];
  if (pipe2(pin, O_CLOEXEC) < 0) goto pipe_failed;
  if (pipe2(pout, O_CLOEXEC) < 0) { close(pin[0]); close(pin[1]); goto pipe_failed; }
  if (pipe2(perr, O_CLOEXEC) < 0) {
    close(pin[0]); close(pin[1]); close(pout[0]); close(pout[1]);
    goto pipe_failed;
  }
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(pin[0]); close(pin[1]); close(pout[0]); close(pout[1]); close(perr[0]); close(perr[1]);
    errno = e;
    nbdkit_error("%s: fork: %m", method);
    return kError;
  }
  if (pid == 0) {
    /* The child: async-signal-safe calls only, up to execve. */
    dup2(pin[0], STDIN_FILENO);
    dup2(pout[1], STDOUT_FILENO);
    dup2(perr[1], STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    execve(argv[0], (char *const *)argv, env);
    _exit(126);
  }
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  if (!in || inlen == 0) { close(pin[1]); pin[1] = -1; }
  else fcntl(pin[1], F_SETFL, O_NONBLOCK);
  struct buf discard = {0}, err = {0};
  struct buf *o = out ? out : &discard;
  size_t sent = 0;
  bool oom = false;
  int open_outputs = 2;
  while (open_outputs > 0 || pin[1] >= 0) {
    struct pollfd fds[3];
    int n = 0, io = -1, oo = -1, eo = -1;
    if (pin[1] >= 0) { fds[n] = (struct pollfd){pin[1], POLLOUT, 0}; io = n++; }
    if (pout[0] >= 0) { fds[n] = (struct pollfd){pout[0], POLLIN, 0}; oo = n++; }
    if (perr[0] >= 0) { fds[n] = (struct pollfd){perr[0], POLLIN, 0}; eo = n++; }
    if (poll(fds, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (io >= 0 && fds[io].revents) {
      ssize_t w = write(pin[1], (const char *)in + sent, inlen - sent);
      if (w > 0) sent += (size_t)w;
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == inlen) { close(pin[1]); pin[1] = -1; }
    }
    int which[2] = {oo, eo};
    for (int k = 0; k < 2; k++) {
      int at = which[k];
      if (at < 0 || !fds[at].revents) continue;
      int *fd = k == 0 ? &pout[0] : &perr[0];
      char chunk[65536];
      ssize_t r = read(*fd, chunk, sizeof chunk);
      if (r > 0) {
        /* stderr: only its start matters (an errno name and a message). */
        if (k == 1 && err.len > 65536) continue;
        if (buf_add(k == 0 ? o : &err, chunk, (size_t)r) < 0) oom = true;
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(*fd);
        *fd = -1;
        open_outputs--;
      }
    }
  }
  if (pin[1] >= 0) close(pin[1]);
  if (pout[0] >= 0) close(pout[0]);
  if (perr[0] >= 0) close(perr[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  free(discard.data);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (oom) { free(err.data); nbdkit_error("%s: out of memory for its output", method); errno = ENOMEM; return kError; }
  if (code == kOk || code == kMissing || code == kFalse) { free(err.data); return code; }

  /* A failure: "ERRNO message" on stderr, else EIO with what it said. */
  static const struct { const char *name; int value; } names[] = {
    {"EPERM", EPERM}, {"EIO", EIO}, {"ENOMEM", ENOMEM}, {"EINVAL", EINVAL}, {"ENOSPC", ENOSPC},
    {"EROFS", EROFS}, {"ESHUTDOWN", ESHUTDOWN}, {"ENOTSUP", ENOTSUP}, {"EOPNOTSUPP", EOPNOTSUPP},
    {"EFBIG", EFBIG}, {"EOVERFLOW", EOVERFLOW}, {"EDQUOT", EDQUOT}, {"ENOENT", ENOENT}, {"EACCES", EACCES},
  };
  const char *said = err.data ? err.data : "";
  while (*said && isspace((unsigned char)*said)) said++;
  int value = EIO;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    size_t l = strlen(names[i].name);
    if (strncmp(said, names[i].name, l) == 0 && (said[l] == '\0' || isspace((unsigned char)said[l]))) {
      value = names[i].value;
      said += l;
      while (*said && isspace((unsigned char)*said)) said++;
      break;
    }
  }
  size_t tl = strlen(said);
  while (tl > 0 && isspace((unsigned char)said[tl - 1])) tl--;
  if (tl > 0) nbdkit_error("%s: %.*s", method, (int)tl, said);
  else nbdkit_error("%s: the script failed (exit status %d)", method, code);
  free(err.data);
  nbdkit_set_error(value);
  errno = value;
  return kError;

pipe_failed:
  nbdkit_error("%s: pipe: %m", method);
  return kError;
}

/* Its stdout with the trailing newline removed (caller frees), or NULL. */
static char *answer(struct buf *b)
{
  if (!b->data) return strdup("");
  while (b->len > 0 && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r')) b->data[--b->len] = '\0';
  return b->data;
}

static void make_env(void)
{
  size_t n = 0;
  while (environ[n]) n++;
  env = calloc(n + 2, sizeof *env);
  if (!env) return;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "tmpdir=", 7) != 0) env[k++] = environ[i];
  static char entry[80];
  snprintf(entry, sizeof entry, "tmpdir=%s", tmpdir);
  env[k++] = entry;
  env[k] = NULL;
}

/* Removes $tmpdir and what the scripts left in it. */
static void remove_tmpdir(void)
{
  if (!tmpdir[0]) return;
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/rm", "rm", "-rf", "--", tmpdir, (char *)NULL);
    _exit(126);
  }
  if (pid > 0) while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
}

static void sh_load(void)
{
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(tmpdir, sizeof tmpdir, "%.40s/nbdcage-shXXXXXX", base);
  if (!mkdtemp(tmpdir)) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nbdcage-shXXXXXX");
    if (!mkdtemp(tmpdir)) tmpdir[0] = '\0';
  }
  make_env();
}

static void sh_unload(void)
{
  if (env) call("unload", NULL, NULL, 0, NULL);  /* errors ignored */
  remove_tmpdir();
  free(env);
  free(script);
#ifdef EVAL
  for (size_t i = 0; i < ncodes; i++) { free(codes[i].method); free(codes[i].text); }
  free(codes);
  free(missing);
#endif
}

static bool ready(void)
{
  if (!tmpdir[0] || !env) { nbdkit_error("could not make the scripts' temporary directory"); return false; }
#ifndef EVAL
  if (!script) { nbdkit_error("a script is required: 'sh SCRIPT' or 'sh -' to read it from standard input"); return false; }
#endif
  return true;
}

#ifndef EVAL
/* sh -: the script from stdin, into $tmpdir (nbdkit_stdio_safe says when). */
static int script_from_stdin(void)
{
  if (!nbdkit_stdio_safe()) {
    nbdkit_error("sh -: standard input is not available to read the script from (with -s it is the client's)");
    return -1;
  }
  char path[128];
  snprintf(path, sizeof path, "%s/inline-script.sh", tmpdir);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (fd < 0) { nbdkit_error("%s: %m", path); return -1; }
  char chunk[65536];
  ssize_t r;
  while ((r = read(STDIN_FILENO, chunk, sizeof chunk)) > 0)
    if (write(fd, chunk, (size_t)r) != r) { nbdkit_error("%s: %m", path); close(fd); return -1; }
  close(fd);
  script = strdup(path);
  return script ? 0 : -1;
}
#endif

static int sh_config(const char *key, const char *value)
{
#ifdef EVAL
  static const char *const methods[] = {
    "after_fork", "block_size", "cache", "can_cache", "can_extents", "can_fast_zero", "can_flush", "can_fua",
    "can_multi_conn", "can_trim", "can_write", "can_zero", "close", "config", "config_complete",
    "default_export", "dump_plugin", "export_description", "extents", "flush", "get_ready", "get_size",
    "is_rotational", "list_exports", "load", "open", "preconnect", "pread", "pwrite", "thread_model", "trim",
    "unload", "zero"};
  if (strcmp(key, "missing") == 0) {
    free(missing);
    missing = strdup(value);
    return missing ? 0 : -1;
  }
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    if (strcmp(key, methods[i]) != 0) continue;
    struct code *more = realloc(codes, (ncodes + 1) * sizeof *codes);
    if (!more) return -1;
    codes = more;
    codes[ncodes].method = strdup(key);
    codes[ncodes].text = strdup(value);
    if (!codes[ncodes].method || !codes[ncodes].text) return -1;
    ncodes++;
    if (strcmp(key, "load") == 0) return call("load", NULL, NULL, 0, NULL) == kError ? -1 : 0;
    return 0;
  }
#else
  if (strcmp(key, "script") == 0) {
    if (script) { nbdkit_error("script= given twice"); return -1; }
    if (strcmp(value, "-") == 0) {
      if (script_from_stdin() == -1) return -1;
    } else if (!(script = nbdkit_realpath(value))) {
      return -1;
    }
    /* The script's own load, now that we know it. */
    return call("load", NULL, NULL, 0, NULL) == kError ? -1 : 0;
  }
#endif
  /* Anything else is the script's: its config method decides. */
  if (!ready()) return -1;
  const char *args[] = {key, value, NULL};
  switch (call("config", args, NULL, 0, NULL)) {
  case kOk: return 0;
  case kMissing: nbdkit_error("unknown parameter '%s' (the script has no config method)", key); return -1;
  default: return -1;
  }
}

static int sh_config_complete(void)
{
  if (!ready()) return -1;
  if (call("config_complete", NULL, NULL, 0, NULL) == kError) return -1;
  struct buf out = {0};
  int r = call("thread_model", NULL, NULL, 0, &out);
  if (r == kOk) {
    char *m = answer(&out);
    if (strcmp(m, "parallel") == 0) thread_model = NBDKIT_THREAD_MODEL_PARALLEL;
    else if (strcmp(m, "serialize_requests") == 0) thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS;
    else if (strcmp(m, "serialize_connections") == 0) thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS;
    else thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS;
    free(m);
  } else {
    free(out.data);
    if (r == kError) return -1;
  }
  return 0;
}

static int sh_thread_model(void) { return thread_model; }

static void sh_dump_plugin(void)
{
  printf("max_known_status=%d\n", kFalse);
  fflush(stdout);
  if (env && (
#ifndef EVAL
      script &&
#endif
      true)) {
    struct buf out = {0};
    if (call("dump_plugin", NULL, NULL, 0, &out) == kOk && out.data) fputs(out.data, stdout);
    free(out.data);
    fflush(stdout);
  }
}

static int simple(const char *method)
{
  return call(method, NULL, NULL, 0, NULL) == kError ? -1 : 0;
}
static int sh_get_ready(void) { return simple("get_ready"); }
static int sh_after_fork(void) { return simple("after_fork"); }

static int sh_preconnect(int readonly)
{
  const char *args[] = {readonly ? "true" : "false", NULL};
  return call("preconnect", args, NULL, 0, NULL) == kError ? -1 : 0;
}

/* The list forms of list_exports and default_export: NAMES (default),
 * INTERLEAVED, NAMES+DESCRIPTIONS.  Calls add(name, description). */
static int parse_list(char *text, int (*add)(void *, const char *, const char *), void *opaque)
{
  char *lines[4096];
  size_t n = 0;
  for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < 4096; l = strtok_r(NULL, "\n", &save))
    lines[n++] = l;
  size_t first = 0;
  int mode = 0;  /* 0 names, 1 interleaved, 2 names+descriptions */
  if (n > 0 && strcmp(lines[0], "NAMES") == 0) first = 1;
  else if (n > 0 && strcmp(lines[0], "INTERLEAVED") == 0) first = 1, mode = 1;
  else if (n > 0 && strcmp(lines[0], "NAMES+DESCRIPTIONS") == 0) first = 1, mode = 2;
  size_t count = n - first;
  if (mode == 0)
    for (size_t i = first; i < n; i++) { if (add(opaque, lines[i], NULL) == -1) return -1; }
  else if (mode == 1)
    for (size_t i = first; i + 1 < n + 1; i += 2) { if (add(opaque, lines[i], i + 1 < n ? lines[i + 1] : NULL) == -1) return -1; }
  else
    for (size_t i = 0; i < count / 2; i++) { if (add(opaque, lines[first + i], lines[first + count / 2 + i]) == -1) return -1; }
  return 0;
}

static int add_export(void *exports, const char *name, const char *description)
{
  return nbdkit_add_export(exports, name, description);
}

static int sh_list_exports(int readonly, int is_tls, struct nbdkit_exports *exports)
{
  const char *args[] = {readonly ? "true" : "false", is_tls ? "true" : "false", NULL};
  struct buf out = {0};
  int r = call("list_exports", args, NULL, 0, &out);
  if (r == kMissing) { free(out.data); return nbdkit_use_default_export(exports); }
  if (r != kOk) { free(out.data); return -1; }
  r = parse_list(out.data ? out.data : (char[]){""}, add_export, exports);
  free(out.data);
  return r;
}

static int first_name(void *result, const char *name, const char *description)
{
  if (!*(const char **)result) *(const char **)result = nbdkit_strdup_intern(name);
  return 0;
}

static const char *sh_default_export(int readonly, int is_tls)
{
  const char *args[] = {readonly ? "true" : "false", is_tls ? "true" : "false", NULL};
  struct buf out = {0};
  int r = call("default_export", args, NULL, 0, &out);
  if (r == kMissing) { free(out.data); return ""; }
  if (r != kOk) { free(out.data); return NULL; }
  const char *name = NULL;
  parse_list(out.data ? out.data : (char[]){""}, first_name, &name);
  free(out.data);
  return name ? name : "";
}

struct handle { char *h; };

static void *sh_open(int readonly)
{
  const char *name = nbdkit_export_name();
  const char *args[] = {readonly ? "true" : "false", name ? name : "", nbdkit_is_tls() ? "true" : "false", NULL};
  struct buf out = {0};
  int r = call("open", args, NULL, 0, &out);
  struct handle *h = calloc(1, sizeof *h);
  if (!h) { free(out.data); nbdkit_error("calloc: %m"); return NULL; }
  if (r == kOk) h->h = answer(&out);
  else if (r == kMissing) { free(out.data); h->h = strdup(""); }
  else { free(out.data); free(h); return NULL; }
  if (!h->h) { free(h); return NULL; }
  return h;
}

static void sh_close(void *hv)
{
  struct handle *h = hv;
  const char *args[] = {h->h, NULL};
  call("close", args, NULL, 0, NULL);
  free(h->h);
  free(h);
}

static const char *sh_export_description(void *hv)
{
  struct handle *h = hv;
  const char *args[] = {h->h, NULL};
  struct buf out = {0};
  if (call("export_description", args, NULL, 0, &out) != kOk) { free(out.data); return NULL; }
  char *d = answer(&out);
  const char *interned = nbdkit_strdup_intern(d);
  free(d);
  return interned;
}

static int64_t sh_get_size(void *hv)
{
  struct handle *h = hv;
  const char *args[] = {h->h, NULL};
  struct buf out = {0};
  int r = call("get_size", args, NULL, 0, &out);
  if (r != kOk) {
    free(out.data);
    if (r == kMissing) nbdkit_error("get_size: the script must provide this method");
    return -1;
  }
  char *s = answer(&out);
  int64_t size = nbdkit_parse_size(s);
  free(s);
  return size;
}

static int sh_block_size(void *hv, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
  struct handle *h = hv;
  const char *args[] = {h->h, NULL};
  struct buf out = {0};
  int r = call("block_size", args, NULL, 0, &out);
  if (r == kMissing) { free(out.data); *minimum = *preferred = *maximum = 0; return 0; }
  if (r != kOk) { free(out.data); return -1; }
  char *s = answer(&out), *save = NULL;
  int64_t v[3];
  int n = 0;
  for (char *w = strtok_r(s, " \t\n", &save); w && n < 3; w = strtok_r(NULL, " \t\n", &save))
    if ((v[n++] = nbdkit_parse_size(w)) < 0) { free(s); return -1; }
  free(s);
  if (n != 3) { nbdkit_error("block_size: three sizes are expected"); return -1; }
  *minimum = (uint32_t)v[0]; *preferred = (uint32_t)v[1]; *maximum = (uint32_t)v[2];
  return 0;
}

/* A can_* or is_* method: 0 true, 3 false, 2 false (not provided). */
static int boolean(const char *method, void *hv)
{
  struct handle *h = hv;
  const char *args[] = {h->h, NULL};
  switch (call(method, args, NULL, 0, NULL)) {
  case kOk: return 1;
  case kFalse: case kMissing: return 0;
  default: return -1;
  }
}
static int sh_can_write(void *h) { return boolean("can_write", h); }
static int sh_can_flush(void *h) { return boolean("can_flush", h); }
static int sh_is_rotational(void *h) { return boolean("is_rotational", h); }
static int sh_can_trim(void *h) { return boolean("can_trim", h); }
static int sh_can_zero(void *h) { return boolean("can_zero", h); }
static int sh_can_extents(void *h) { return boolean("can_extents", h); }
static int sh_can_multi_conn(void *h) { return boolean("can_multi_conn", h); }

static int sh_can_fast_zero(void *hv)
{
  struct handle *h = hv;
  const char *args[] = {h->h, NULL};
  switch (call("can_fast_zero", args, NULL, 0, NULL)) {
  case kOk: return 1;
  case kFalse: return 0;
  case kMissing: return 1;  /* as nbdkit: a missing can_fast_zero leaves fast zeroes to the zero method */
  default: return -1;
  }
}

/* can_fua and can_cache print none, emulate or native. */
static int tristate(const char *method, void *hv, int none, int emulate, int native)
{
  struct handle *h = hv;
  const char *args[] = {h->h, NULL};
  struct buf out = {0};
  int r = call(method, args, NULL, 0, &out);
  if (r == kMissing || r == kFalse) { free(out.data); return none; }
  if (r != kOk) { free(out.data); return -1; }
  char *s = answer(&out);
  int v = strcmp(s, "native") == 0 ? native : strcmp(s, "emulate") == 0 ? emulate : strcmp(s, "none") == 0 ? none : -2;
  if (v == -2) { nbdkit_error("%s: '%s' is not none, emulate or native", method, s); v = -1; }
  free(s);
  return v;
}
static int sh_can_fua(void *h) { return tristate("can_fua", h, NBDKIT_FUA_NONE, NBDKIT_FUA_EMULATE, NBDKIT_FUA_NATIVE); }
static int sh_can_cache(void *h) { return tristate("can_cache", h, NBDKIT_CACHE_NONE, NBDKIT_CACHE_EMULATE, NBDKIT_CACHE_NATIVE); }

static int sh_pread(void *hv, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  char c[16], o[24];
  snprintf(c, sizeof c, "%" PRIu32, count);
  snprintf(o, sizeof o, "%" PRIu64, offset);
  const char *args[] = {h->h, c, o, NULL};
  struct buf out = {0};
  int r = call("pread", args, NULL, 0, &out);
  if (r != kOk) {
    free(out.data);
    if (r == kMissing || r == kFalse) { nbdkit_error("pread: the script must provide this method"); nbdkit_set_error(EIO); }
    return -1;
  }
  if (out.len != count) {
    nbdkit_error("pread: the script printed %zu bytes, not %" PRIu32, out.len, count);
    free(out.data);
    nbdkit_set_error(EIO);
    return -1;
  }
  memcpy(buf, out.data, count);
  free(out.data);
  return 0;
}

static void flag_text(uint32_t flags, char *text, size_t size)
{
  snprintf(text, size, "%s%s%s%s%s", flags & NBDKIT_FLAG_FUA ? "fua" : "",
           (flags & NBDKIT_FLAG_FUA) && (flags & (NBDKIT_FLAG_MAY_TRIM | NBDKIT_FLAG_FAST_ZERO)) ? "," : "",
           flags & NBDKIT_FLAG_MAY_TRIM ? "may_trim" : "",
           (flags & NBDKIT_FLAG_MAY_TRIM) && (flags & NBDKIT_FLAG_FAST_ZERO) ? "," : "",
           flags & NBDKIT_FLAG_FAST_ZERO ? "fast" : "");
}

static int ranged(const char *method, void *hv, const void *in, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  char c[16], o[24], f[64];
  snprintf(c, sizeof c, "%" PRIu32, count);
  snprintf(o, sizeof o, "%" PRIu64, offset);
  flag_text(flags, f, sizeof f);
  const char *args[] = {h->h, c, o, f, NULL};
  int r = call(method, args, in, in ? count : 0, NULL);
  if (r == kOk) return 0;
  if (r == kMissing || r == kFalse) {
    nbdkit_error("%s: the script does not provide this method", method);
    nbdkit_set_error(strcmp(method, "zero") == 0 ? EOPNOTSUPP : EIO);
  }
  return -1;
}
static int sh_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  return ranged("pwrite", h, buf, count, offset, flags & NBDKIT_FLAG_FUA);
}
static int sh_trim(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
  return ranged("trim", h, NULL, count, offset, flags & NBDKIT_FLAG_FUA);
}
static int sh_zero(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
  return ranged("zero", h, NULL, count, offset, flags);
}

static int sh_flush(void *hv, uint32_t flags)
{
  struct handle *h = hv;
  const char *args[] = {h->h, NULL};
  return call("flush", args, NULL, 0, NULL) == kOk ? 0 : -1;
}

static int sh_cache(void *hv, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = hv;
  char c[16], o[24];
  snprintf(c, sizeof c, "%" PRIu32, count);
  snprintf(o, sizeof o, "%" PRIu64, offset);
  const char *args[] = {h->h, c, o, NULL};
  return call("cache", args, NULL, 0, NULL) == kError ? -1 : 0;
}

/* extents: "offset length [type]" lines; type a number or hole,zero. */
static int sh_extents(void *hv, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = hv;
  char c[16], o[24];
  snprintf(c, sizeof c, "%" PRIu32, count);
  snprintf(o, sizeof o, "%" PRIu64, offset);
  const char *args[] = {h->h, c, o, flags & NBDKIT_FLAG_REQ_ONE ? "req_one" : "", NULL};
  struct buf out = {0};
  if (call("extents", args, NULL, 0, &out) != kOk) { free(out.data); return -1; }
  int r = 0, added = 0;
  char *save = NULL;
  for (char *line = strtok_r(out.data ? out.data : (char[]){""}, "\n", &save); line && r == 0;
       line = strtok_r(NULL, "\n", &save)) {
    char *wsave = NULL, *w0 = strtok_r(line, " \t", &wsave), *w1 = strtok_r(NULL, " \t", &wsave),
         *w2 = strtok_r(NULL, " \t", &wsave);
    if (!w0) continue;
    int64_t off = nbdkit_parse_size(w0), len = w1 ? nbdkit_parse_size(w1) : -1;
    if (off < 0 || len < 0) { nbdkit_error("extents: cannot read the line '%s'", line); r = -1; break; }
    uint32_t type = 0;
    if (w2 && isdigit((unsigned char)w2[0])) type = (uint32_t)strtoul(w2, NULL, 0);
    else if (w2) {
      if (strstr(w2, "hole")) type |= NBDKIT_EXTENT_HOLE;
      if (strstr(w2, "zero")) type |= NBDKIT_EXTENT_ZERO;
    }
    r = nbdkit_add_extent(extents, (uint64_t)off, (uint64_t)len, type);
    added++;
  }
  free(out.data);
  if (r == 0 && added == 0) { nbdkit_error("extents: the script printed no extents"); return -1; }
  return r;
}

static struct nbdkit_plugin plugin = {
#ifdef EVAL
  .name = "eval",
  .longname = "nbdcage eval plugin",
  .description = "Each method given on the command line as shell code (METHOD='CODE').",
  .config_help = "METHOD=<CODE>  The shell code for METHOD (get_size= and pread= are required).\n"
                 "missing=<CODE> The code for any method not given.",
#else
  .name = "sh",
  .longname = "nbdcage shell script plugin",
  .description = "A plugin written as a shell script (nbdkit's shell plugin protocol).",
  .config_help = "[script=]<SCRIPT>  (required) The script, or - to read it from standard input.\n"
                 "KEY=VALUE          Passed to the script's config method.",
  .magic_config_key = "script",
#endif
  .version = NBDCAGE_VERSION,
  .load = sh_load,
  .unload = sh_unload,
  .dump_plugin = sh_dump_plugin,
  .config = sh_config,
  .config_complete = sh_config_complete,
  .thread_model = sh_thread_model,
  .get_ready = sh_get_ready,
  .after_fork = sh_after_fork,
  .preconnect = sh_preconnect,
  .list_exports = sh_list_exports,
  .default_export = sh_default_export,
  .open = sh_open,
  .close = sh_close,
  .export_description = sh_export_description,
  .get_size = sh_get_size,
  .block_size = sh_block_size,
  .can_write = sh_can_write,
  .can_flush = sh_can_flush,
  .is_rotational = sh_is_rotational,
  .can_trim = sh_can_trim,
  .can_zero = sh_can_zero,
  .can_fast_zero = sh_can_fast_zero,
  .can_extents = sh_can_extents,
  .can_fua = sh_can_fua,
  .can_multi_conn = sh_can_multi_conn,
  .can_cache = sh_can_cache,
  .pread = sh_pread,
  .pwrite = sh_pwrite,
  .flush = sh_flush,
  .trim = sh_trim,
  .zero = sh_zero,
  .extents = sh_extents,
  .cache = sh_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
