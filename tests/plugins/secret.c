/* secret: a test fixture, not a product plugin.  It reads password= with
 * nbdkit_read_password (so every form of it: VALUE, +FILE, -, -FD) and
 * serves a read-only disk holding exactly the password's bytes, so that a
 * test can see what the plugin got.  With -v it also hexdumps it, and it
 * parses delay= and probability= with nbdkit 1.36-1.46's helpers, saying
 * what they gave: a plugin built against a newer nbdkit, loaded.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <stdlib.h>
#include <string.h>

static char *password;

static void secret_unload(void) { free(password); }

static int secret_config(const char *key, const char *value)
{
  if (strcmp(key, "delay") == 0) {
    unsigned sec, nsec;
    if (nbdkit_parse_delay(key, value, &sec, &nsec) == -1) return -1;
    nbdkit_debug("%s: delay %u s %u ns", nbdkit_timestamp(), sec, nsec);
    return 0;
  }
  if (strcmp(key, "probability") == 0) {
    double p;
    if (nbdkit_parse_probability(key, value, &p) == -1) return -1;
    nbdkit_debug("probability %.4f", p);
    return 0;
  }
  if (strcmp(key, "password") != 0) {
    nbdkit_error("unknown parameter '%s' (secret takes password=, delay=, probability=)", key);
    return -1;
  }
  free(password);
  password = NULL;
  return nbdkit_read_password(value, &password);
}

static int secret_config_complete(void)
{
  if (!password) {
    nbdkit_error("password= is required");
    return -1;
  }
  nbdkit_debug_hexdump(password, strlen(password), "password: ", 0);
  return 0;
}

static void *secret_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t secret_get_size(void *h) { return (int64_t)strlen(password); }
static int secret_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  memcpy(buf, password + offset, count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "secret",
  .unload = secret_unload,
  .config = secret_config,
  .config_complete = secret_config_complete,
  .open = secret_open,
  .get_size = secret_get_size,
  .pread = secret_pread,
};

NBDKIT_REGISTER_PLUGIN(plugin)
