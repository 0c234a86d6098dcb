/* peer: a test fixture, not a product plugin.  A 1 MiB disk whose every
 * read answers, from the start of the buffer, who the client is as the
 * plugin sees it (nbdkit_peer_* and nbdkit_export_name):
 *   "export=NAME family=F pid=P uid=U gid=G\n" then zeroes
 * (-1 where a call failed).  It also checks nbdkit_peer_name's length
 * contract: a short buffer gets the full length back.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void *peer_open(int readonly) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t peer_get_size(void *h) { return 1024 * 1024; }

static int peer_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int family = nbdkit_peer_name((struct sockaddr *) &ss, &len) == 0 ? ss.ss_family : -1;
  socklen_t shortlen = 1;
  if (family != -1 && (nbdkit_peer_name((struct sockaddr *) &ss, &shortlen) != 0 || shortlen != len))
    family = -2;  /* the length contract is broken */
  const char *name = nbdkit_export_name();
  char text[256];
  int n = snprintf(text, sizeof text, "export=%s family=%d pid=%lld uid=%lld gid=%lld\n",
                   name ? name : "?", family, (long long) nbdkit_peer_pid(),
                   (long long) nbdkit_peer_uid(), (long long) nbdkit_peer_gid());
  memset(buf, 0, count);
  memcpy(buf, text, (uint32_t) n < count ? (uint32_t) n : count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "peer",
  .open = peer_open,
  .get_size = peer_get_size,
  .pread = peer_pread,
};

NBDKIT_REGISTER_PLUGIN(plugin)
