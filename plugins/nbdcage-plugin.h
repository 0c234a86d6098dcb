/* nbdcage-plugin.h: the public C ABI for nbdcage plugins.
 *
 * A plugin is a shared object exporting `plugin_init`, which returns a
 * pointer to a `struct nbdkit_plugin`.  The struct layout and the helper
 * functions below are binary-compatible with nbdkit's plugin API (version 2,
 * and version 1 when NBDKIT_API_VERSION is defined to 1), so one host loads
 * both our plugins and unmodified third-party ones.
 *
 * Rules of the layout: fields are only ever appended; `_struct_size` tells
 * the host how many bytes of the struct the plugin knows about, and the host
 * treats every later field as absent.
 *
 * A plugin source file defines THREAD_MODEL (and optionally
 * NBDKIT_API_VERSION) before including this header, fills in a static
 * struct, and ends with NBDKIT_REGISTER_PLUGIN(that_struct).
 */
#ifndef NBDCAGE_PLUGIN_H
#define NBDCAGE_PLUGIN_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef NBDKIT_API_VERSION
#define NBDKIT_API_VERSION 1
#endif

/* How much concurrency the plugin tolerates, weakest first. */
#define NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS  0 /* one handle at a time */
#define NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS 1 /* one call at a time */
#define NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS     2 /* one call per handle */
#define NBDKIT_THREAD_MODEL_PARALLEL               3 /* anything goes */

/* Flags passed to the v2 data callbacks. */
#define NBDKIT_FLAG_MAY_TRIM  (1 << 0) /* zero: holes may be punched */
#define NBDKIT_FLAG_FUA       (1 << 1) /* persist before returning */
#define NBDKIT_FLAG_REQ_ONE   (1 << 2) /* extents: one extent suffices */
#define NBDKIT_FLAG_FAST_ZERO (1 << 3) /* zero: fail with ENOTSUP if slow */

/* Answers of can_fua and can_cache. */
#define NBDKIT_FUA_NONE    0
#define NBDKIT_FUA_EMULATE 1
#define NBDKIT_FUA_NATIVE  2
#define NBDKIT_CACHE_NONE    0
#define NBDKIT_CACHE_EMULATE 1
#define NBDKIT_CACHE_NATIVE  2

/* Extent types for nbdkit_add_extent. */
#define NBDKIT_EXTENT_HOLE (1 << 0)
#define NBDKIT_EXTENT_ZERO (1 << 1)

#if defined(__GNUC__)
#define NBDCAGE_PRINTF(fmt, args) __attribute__((__format__(__printf__, fmt, args)))
#define NBDKIT_DLL_PUBLIC __attribute__((__visibility__("default")))
#else
#define NBDCAGE_PRINTF(fmt, args)
#define NBDKIT_DLL_PUBLIC
#endif

/* Helpers exported by the plugin host. */
extern void nbdkit_error(const char *fmt, ...) NBDCAGE_PRINTF(1, 2);
extern void nbdkit_verror(const char *fmt, va_list args) NBDCAGE_PRINTF(1, 0);
extern void nbdkit_debug(const char *fmt, ...) NBDCAGE_PRINTF(1, 2);
extern void nbdkit_vdebug(const char *fmt, va_list args) NBDCAGE_PRINTF(1, 0);
extern void nbdkit_set_error(int err);

extern char *nbdkit_absolute_path(const char *path);
extern char *nbdkit_realpath(const char *path);
extern int64_t nbdkit_parse_size(const char *str);
extern int nbdkit_parse_bool(const char *str);
extern int nbdkit_parse_int(const char *what, const char *str, int *r);
extern int nbdkit_parse_unsigned(const char *what, const char *str, unsigned *r);
extern int nbdkit_parse_int8_t(const char *what, const char *str, int8_t *r);
extern int nbdkit_parse_uint8_t(const char *what, const char *str, uint8_t *r);
extern int nbdkit_parse_int16_t(const char *what, const char *str, int16_t *r);
extern int nbdkit_parse_uint16_t(const char *what, const char *str, uint16_t *r);
extern int nbdkit_parse_int32_t(const char *what, const char *str, int32_t *r);
extern int nbdkit_parse_uint32_t(const char *what, const char *str, uint32_t *r);
extern int nbdkit_parse_int64_t(const char *what, const char *str, int64_t *r);
extern int nbdkit_parse_uint64_t(const char *what, const char *str, uint64_t *r);
extern int nbdkit_read_password(const char *value, char **password);
extern int nbdkit_stdio_safe(void);
extern int nbdkit_nanosleep(unsigned sec, unsigned nsec);
extern void nbdkit_shutdown(void);

/* In a connection's callbacks (open, the data calls, close): the export
 * the client asked for, and who the client is, as the server's kernel saw
 * its socket (the plugin host never touches it).  pid/uid/gid are known on
 * Unix sockets only; elsewhere they fail with an error, returning -1. */
extern const char *nbdkit_export_name(void);
extern int nbdkit_is_tls(void);
extern int nbdkit_peer_name(struct sockaddr *addr, socklen_t *addrlen);
extern int64_t nbdkit_peer_pid(void);
extern int64_t nbdkit_peer_uid(void);
extern int64_t nbdkit_peer_gid(void);
/* nbdkit 1.36-1.40: the client's security label (SO_PEERSEC; an error
 * where the kernel has none for it) and its TLS certificate's DN and
 * issuer ("" without TLS).  Free the strings. */
extern char *nbdkit_peer_security_context(void);
/* nbdkit 1.34: drop this connection's client.  force: at once, with no
 * reply to anything in flight; else requests from now on fail with
 * ESHUTDOWN (those running complete).  In a data callback only. */
extern void nbdkit_disconnect(int force);
extern char *nbdkit_peer_tls_dn(void);
extern char *nbdkit_peer_tls_issuer_dn(void);

/* nbdkit 1.36-1.46 helpers: "1.5", "100ms", "10us", "1ns" into seconds
 * and nanoseconds; "0.1", "10%", "1:10", "1/10" into a probability;
 * "YYYY-MM-DD HH:MM:SS.UUUUUU" (thread-local, for debug lines); and
 * hexdumps of a buffer, or of where two differ, to the debug output. */
extern int nbdkit_parse_delay(const char *what, const char *str, unsigned *sec, unsigned *nsec);
extern int nbdkit_parse_probability(const char *what, const char *str, double *r);
extern const char *nbdkit_timestamp(void);
extern void nbdkit_debug_hexdump(const void *buf, size_t len, const char *prefix, uint64_t start);
extern void nbdkit_debug_hexdiff(const void *buf1, const void *buf2, size_t len, const char *prefix, uint64_t start);

extern const char *nbdkit_strdup_intern(const char *str);
extern const char *nbdkit_strndup_intern(const char *str, size_t n);
extern const char *nbdkit_printf_intern(const char *fmt, ...) NBDCAGE_PRINTF(1, 2);
extern const char *nbdkit_vprintf_intern(const char *fmt, va_list args) NBDCAGE_PRINTF(1, 0);

struct nbdkit_extents;
extern int nbdkit_add_extent(struct nbdkit_extents *, uint64_t offset, uint64_t length, uint32_t type);

struct nbdkit_exports;
extern int nbdkit_add_export(struct nbdkit_exports *, const char *name, const char *description);
extern int nbdkit_use_default_export(struct nbdkit_exports *);

/* A non-NULL handle for plugins that keep no per-connection state. */
#define NBDKIT_HANDLE_NOT_NEEDED (&errno)

struct nbdkit_plugin {
  /* Filled in by NBDKIT_REGISTER_PLUGIN. */
  uint64_t _struct_size;
  int _api_version;
  int _thread_model;

  const char *name;        /* required: [a-z0-9]+ */
  const char *longname;
  const char *version;
  const char *description;

  void (*load)(void);
  void (*unload)(void);

  int (*config)(const char *key, const char *value);
  int (*config_complete)(void);
  const char *config_help;

  void *(*open)(int readonly);            /* required */
  void (*close)(void *handle);

  int64_t (*get_size)(void *handle);      /* required */

  int (*can_write)(void *handle);
  int (*can_flush)(void *handle);
  int (*is_rotational)(void *handle);
  int (*can_trim)(void *handle);

  /* Version 1 data callbacks (no flags argument). */
#if NBDKIT_API_VERSION == 1
  int (*pread)(void *handle, void *buf, uint32_t count, uint64_t offset);
  int (*pwrite)(void *handle, const void *buf, uint32_t count, uint64_t offset);
  int (*flush)(void *handle);
  int (*trim)(void *handle, uint32_t count, uint64_t offset);
  int (*zero)(void *handle, uint32_t count, uint64_t offset, int may_trim);
#else
  int (*_pread_v1)(void *, void *, uint32_t, uint64_t);
  int (*_pwrite_v1)(void *, const void *, uint32_t, uint64_t);
  int (*_flush_v1)(void *);
  int (*_trim_v1)(void *, uint32_t, uint64_t);
  int (*_zero_v1)(void *, uint32_t, uint64_t, int);
#endif

  int errno_is_preserved;

  void (*dump_plugin)(void);

  int (*can_zero)(void *handle);
  int (*can_fua)(void *handle);

  /* Version 2 data callbacks (with flags). */
#if NBDKIT_API_VERSION == 1
  int (*_unused1)(void *, void *, uint32_t, uint64_t, uint32_t);
  int (*_unused2)(void *, const void *, uint32_t, uint64_t, uint32_t);
  int (*_unused3)(void *, uint32_t);
  int (*_unused4)(void *, uint32_t, uint64_t, uint32_t);
  int (*_unused5)(void *, uint32_t, uint64_t, uint32_t);
#else
  int (*pread)(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags);
  int (*pwrite)(void *handle, const void *buf, uint32_t count, uint64_t offset, uint32_t flags);
  int (*flush)(void *handle, uint32_t flags);
  int (*trim)(void *handle, uint32_t count, uint64_t offset, uint32_t flags);
  int (*zero)(void *handle, uint32_t count, uint64_t offset, uint32_t flags);
#endif

  const char *magic_config_key;

  int (*can_multi_conn)(void *handle);

  int (*can_extents)(void *handle);
  int (*extents)(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
                 struct nbdkit_extents *extents);
  int (*can_cache)(void *handle);
  int (*cache)(void *handle, uint32_t count, uint64_t offset, uint32_t flags);

  int (*thread_model)(void);

  int (*can_fast_zero)(void *handle);

  int (*preconnect)(int readonly);

  int (*get_ready)(void);
  int (*after_fork)(void);

  int (*list_exports)(int readonly, int is_tls, struct nbdkit_exports *exports);
  const char *(*default_export)(int readonly, int is_tls);
  const char *(*export_description)(void *handle);

  void (*cleanup)(void);

  int (*block_size)(void *handle, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum);
};

#ifdef __cplusplus
#define NBDCAGE_EXTERN_C extern "C"
#else
#define NBDCAGE_EXTERN_C
#endif

#define NBDKIT_REGISTER_PLUGIN(plugin)                     \
  NBDCAGE_EXTERN_C NBDKIT_DLL_PUBLIC struct nbdkit_plugin * \
  plugin_init(void)                                         \
  {                                                         \
    (plugin)._struct_size = sizeof(plugin);                 \
    (plugin)._api_version = NBDKIT_API_VERSION;             \
    (plugin)._thread_model = THREAD_MODEL;                  \
    return &(plugin);                                       \
  }

#ifdef __cplusplus
}
#endif

#endif /* NBDCAGE_PLUGIN_H */
