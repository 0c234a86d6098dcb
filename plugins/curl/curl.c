/* curl: serves a file fetched with libcurl (http, https, ftp, file, and
 * whatever else this libcurl speaks), read-only, with ranged GETs.
 *
 * Every request takes a curl handle from a pool (so requests run in
 * parallel, and each handle keeps its connection open for the next
 * request: one TCP or TLS setup per handle, not per request), asks for
 * exactly its byte range, and checks that it got exactly that range: a
 * server that ignores ranges is refused at open, never served wrong.
 * Transient failures (connection refused or reset, timeouts, HTTP 408,
 * 429 and 5xx) are retried, with a delay that doubles each time.
 *
 * The plugin needs the network: nbdcage's sandbox policy grants it to
 * the curl plugin unless the URL is a file:// one.
 */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *url;
static char *user, *password, *proxy, *proxy_user, *proxy_password, *cainfo, *capath, *cookie;
static char *user_agent, *protocols, *unix_socket_path, *cipher_list, *tls13_ciphers;
static long ssl_version = CURL_SSLVERSION_DEFAULT;
static bool sslverify = true, followlocation = true, tcp_keepalive = false, tcp_nodelay = true;
static long timeout_secs;  /* 0: none */
static struct curl_slist *headers;
static unsigned retries = 5;
static unsigned retry_delay_ms = 100;

static int64_t size = -1;  /* learned at the first open */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;  /* size and the pool */

/* The pool of idle handles: a handle is set up once, used by one request
 * at a time, and put back with its connection open. */
struct pooled { CURL *c; struct pooled *next; };
static struct pooled *idle;

static void curl_unload(void)
{
  while (idle) {
    struct pooled *p = idle;
    idle = p->next;
    curl_easy_cleanup(p->c);
    free(p);
  }
  curl_slist_free_all(headers);
  char **strings[] = {&url, &user, &password, &proxy, &proxy_user, &proxy_password, &cainfo, &capath, &cookie,
                      &user_agent, &protocols, &unix_socket_path, &cipher_list, &tls13_ciphers};
  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) { free(*strings[i]); *strings[i] = NULL; }
  curl_global_cleanup();
}

static void curl_load(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static int set_string(char **to, const char *value)
{
  free(*to);
  *to = strdup(value);
  if (!*to) { nbdkit_error("strdup: %m"); return -1; }
  return 0;
}

static int set_bool(bool *to, const char *key, const char *value)
{
  int b = nbdkit_parse_bool(value);
  if (b == -1) return -1;
  *to = b;
  return 0;
}

static int curl_config(const char *key, const char *value)
{
  if (strcmp(key, "url") == 0) return set_string(&url, value);
  if (strcmp(key, "user") == 0) return set_string(&user, value);
  if (strcmp(key, "proxy") == 0) return set_string(&proxy, value);
  if (strcmp(key, "proxy-user") == 0) return set_string(&proxy_user, value);
  if (strcmp(key, "cainfo") == 0) return set_string(&cainfo, value);
  if (strcmp(key, "capath") == 0) return set_string(&capath, value);
  if (strcmp(key, "user-agent") == 0) return set_string(&user_agent, value);
  if (strcmp(key, "protocols") == 0) return set_string(&protocols, value);
  if (strcmp(key, "unix-socket-path") == 0) return set_string(&unix_socket_path, value);
  if (strcmp(key, "ssl-cipher-list") == 0) return set_string(&cipher_list, value);
  if (strcmp(key, "tls13-ciphers") == 0) return set_string(&tls13_ciphers, value);
  if (strcmp(key, "password") == 0 || strcmp(key, "proxy-password") == 0 || strcmp(key, "cookie") == 0) {
    char **to = key[0] == 'p' && key[1] == 'a' ? &password : key[0] == 'p' ? &proxy_password : &cookie;
    free(*to);
    *to = NULL;
    return nbdkit_read_password(value, to);
  }
  if (strcmp(key, "sslverify") == 0) return set_bool(&sslverify, key, value);
  if (strcmp(key, "followlocation") == 0) return set_bool(&followlocation, key, value);
  if (strcmp(key, "tcp-keepalive") == 0) return set_bool(&tcp_keepalive, key, value);
  if (strcmp(key, "tcp-nodelay") == 0) return set_bool(&tcp_nodelay, key, value);
  if (strcmp(key, "header") == 0) {
    struct curl_slist *more = curl_slist_append(headers, value);
    if (!more) { nbdkit_error("header=%s: out of memory", value); return -1; }
    headers = more;
    return 0;
  }
  if (strcmp(key, "timeout") == 0) {
    unsigned t;
    if (nbdkit_parse_unsigned(key, value, &t) == -1) return -1;
    timeout_secs = t;
    return 0;
  }
  if (strcmp(key, "retries") == 0) return nbdkit_parse_unsigned(key, value, &retries);
  if (strcmp(key, "retry-delay") == 0) {
    unsigned s, ns;
    if (nbdkit_parse_delay(key, value, &s, &ns) == -1) return -1;
    retry_delay_ms = s * 1000 + ns / 1000000;
    return 0;
  }
  if (strcmp(key, "ssl-version") == 0) {
    static const struct { const char *name; long v; } versions[] = {
      {"default", CURL_SSLVERSION_DEFAULT}, {"tlsv1", CURL_SSLVERSION_TLSv1}, {"sslv2", CURL_SSLVERSION_SSLv2},
      {"sslv3", CURL_SSLVERSION_SSLv3}, {"tlsv1.0", CURL_SSLVERSION_TLSv1_0}, {"tlsv1.1", CURL_SSLVERSION_TLSv1_1},
      {"tlsv1.2", CURL_SSLVERSION_TLSv1_2}, {"tlsv1.3", CURL_SSLVERSION_TLSv1_3}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
      if (strcmp(value, versions[i].name) == 0) { ssl_version = versions[i].v; return 0; }
    nbdkit_error("ssl-version=%s: not one of tlsv1, sslv2, sslv3, tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3", value);
    return -1;
  }
  if (strcmp(key, "header-script") == 0 || strcmp(key, "cookie-script") == 0 ||
      strcmp(key, "header-script-renew") == 0 || strcmp(key, "cookie-script-renew") == 0 ||
      strcmp(key, "cookiefile") == 0 || strcmp(key, "cookiejar") == 0) {
    nbdkit_error("%s= is not supported by nbdcage's curl plugin (give header= or cookie= directly)", key);
    return -1;
  }
  nbdkit_error("unknown parameter '%s' (see nbdcage-curl-plugin(1))", key);
  return -1;
}

static int curl_config_complete(void)
{
  if (!url) {
    nbdkit_error("the url parameter is required, e.g. 'curl https://example.com/disk.img'");
    return -1;
  }
  return 0;
}

/* A new handle with every option of the command line. */
static CURL *new_handle(void)
{
  CURL *c = curl_easy_init();
  if (!c) { nbdkit_error("curl_easy_init failed"); return NULL; }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 0L);  /* we read the status ourselves */
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, followlocation ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, sslverify ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, sslverify ? 2L : 0L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, tcp_keepalive ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, tcp_nodelay ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSLVERSION, ssl_version);
  if (timeout_secs) curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_secs);
  if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (user) curl_easy_setopt(c, CURLOPT_USERNAME, user);
  if (password) curl_easy_setopt(c, CURLOPT_PASSWORD, password);
  if (proxy) curl_easy_setopt(c, CURLOPT_PROXY, proxy);
  if (proxy_user) curl_easy_setopt(c, CURLOPT_PROXYUSERNAME, proxy_user);
  if (proxy_password) curl_easy_setopt(c, CURLOPT_PROXYPASSWORD, proxy_password);
  if (cainfo) curl_easy_setopt(c, CURLOPT_CAINFO, cainfo);
  if (capath) curl_easy_setopt(c, CURLOPT_CAPATH, capath);
  if (cookie) curl_easy_setopt(c, CURLOPT_COOKIE, cookie);
  if (user_agent) curl_easy_setopt(c, CURLOPT_USERAGENT, user_agent);
  if (protocols) curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
  if (unix_socket_path) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_socket_path);
  if (cipher_list) curl_easy_setopt(c, CURLOPT_SSL_CIPHER_LIST, cipher_list);
  if (tls13_ciphers) curl_easy_setopt(c, CURLOPT_TLS13_CIPHERS, tls13_ciphers);
  return c;
}

static CURL *take_handle(void)
{
  pthread_mutex_lock(&lock);
  struct pooled *p = idle;
  if (p) idle = p->next;
  pthread_mutex_unlock(&lock);
  if (!p) return new_handle();
  CURL *c = p->c;
  free(p);
  return c;
}

static void give_back(CURL *c)
{
  struct pooled *p = malloc(sizeof *p);
  if (!p) { curl_easy_cleanup(c); return; }
  p->c = c;
  pthread_mutex_lock(&lock);
  p->next = idle;
  idle = p;
  pthread_mutex_unlock(&lock);
}

/* Where a transfer's body goes: exactly `want` bytes into `buf`. */
struct sink { char *buf; size_t want, got; bool overflow; };

static size_t write_body(char *data, size_t one, size_t n, void *opaque)
{
  struct sink *s = opaque;
  size_t len = one * n;
  if (len > s->want - s->got) { s->overflow = true; return 0; }  /* more than asked: abort the transfer */
  memcpy(s->buf + s->got, data, len);
  s->got += len;
  return len;
}

static bool is_http(void)
{
  return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* Whether a failure is worth trying again: the network or the server may
 * be back in a moment. */
static bool transient(CURLcode rc, long status)
{
  switch (rc) {
  case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_OPERATION_TIMEDOUT:
  case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
  case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
    return true;
  case CURLE_OK:
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
  default:
    return false;
  }
}

/* One ranged GET of [offset, offset+count) into buf, retried while the
 * failure is transient.  `probe`: the open's check that ranges work. */
static int fetch(void *buf, uint32_t count, uint64_t offset)
{
  unsigned delay = retry_delay_ms;
  for (unsigned attempt = 0;; attempt++) {
    CURL *c = take_handle();
    if (!c) return -1;
    char range[64];
    snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, offset, offset + count - 1);
    struct sink s = {buf, count, 0, false};
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_RANGE, range);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(c, CURLOPT_RANGE, NULL);
    if (is_http() && status == 200 && (s.overflow || !(offset == 0 && s.got == count))) {
      give_back(c);
      nbdkit_error("%s: the server ignored the byte range %s (it answered 200, not 206)", url, range);
      errno = EIO;
      return -1;
    }
    bool ok = rc == CURLE_OK && (!is_http() || status == 206 || status == 200) && s.got == count && !s.overflow;
    if (ok) {
      give_back(c);
      return 0;
    }
    if (rc != CURLE_OK) {
      curl_easy_cleanup(c);  /* its connection may be the broken thing */
    } else {
      give_back(c);
    }
    if (attempt < retries && transient(rc, status)) {
      nbdkit_debug("curl: %s bytes %s: %s (HTTP %ld); trying again in %u ms", url, range,
                   rc == CURLE_OK ? "server error" : curl_easy_strerror(rc), status, delay);
      if (nbdkit_nanosleep(delay / 1000, (delay % 1000) * 1000000) == -1) return -1;
      delay = delay < 30000 ? delay * 2 : delay;
      continue;
    }
    if (rc != CURLE_OK)
      nbdkit_error("%s: bytes %s: %s", url, range, curl_easy_strerror(rc));
    else if (is_http() && status != 206 && status != 200)
      nbdkit_error("%s: bytes %s: HTTP status %ld", url, range, status);
    else
      nbdkit_error("%s: bytes %s: the server sent %s bytes than asked", url, range, s.overflow ? "more" : "fewer");
    errno = EIO;
    return -1;
  }
}

/* The size: a HEAD (or the protocol's equivalent) for its length, retried
 * like a read. */
static int64_t fetch_size(void)
{
  unsigned delay = retry_delay_ms;
  for (unsigned attempt = 0;; attempt++) {
    CURL *c = take_handle();
    if (!c) return -1;
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_off_t length = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    if (rc == CURLE_OK) give_back(c); else curl_easy_cleanup(c);
    if (rc == CURLE_OK && (!is_http() || (status >= 200 && status < 300)) && length >= 0) return length;
    if (attempt < retries && transient(rc, status)) {
      if (nbdkit_nanosleep(delay / 1000, (delay % 1000) * 1000000) == -1) return -1;
      delay = delay < 30000 ? delay * 2 : delay;
      continue;
    }
    if (rc != CURLE_OK) nbdkit_error("%s: %s", url, curl_easy_strerror(rc));
    else if (is_http() && (status < 200 || status >= 300)) nbdkit_error("%s: HTTP status %ld", url, status);
    else nbdkit_error("%s: the server does not say how large the file is", url);
    return -1;
  }
}

static void *curl_open(int readonly)
{
  pthread_mutex_lock(&lock);
  int64_t known = size;
  pthread_mutex_unlock(&lock);
  if (known < 0) {
    int64_t s = fetch_size();
    if (s < 0) return NULL;
    /* A server that ignores ranges would serve the start of the file for
     * every read: find out now, with a one-byte range away from 0. */
    if (s > 1) {
      char byte;
      if (fetch(&byte, 1, (uint64_t)s - 1) == -1) return NULL;
    }
    pthread_mutex_lock(&lock);
    size = s;
    pthread_mutex_unlock(&lock);
  }
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t curl_get_size(void *h)
{
  pthread_mutex_lock(&lock);
  int64_t s = size;
  pthread_mutex_unlock(&lock);
  return s;
}

static int curl_no(void *h) { return 0; }
static int curl_yes(void *h) { return 1; }

static int curl_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
  return count == 0 ? 0 : fetch(buf, count, offset);
}

static struct nbdkit_plugin plugin = {
  .name = "curl",
  .longname = "nbdcage curl plugin",
  .version = NBDCAGE_VERSION,
  .description = "Serves a file over http, https, ftp or file with ranged requests, read-only.",
  .load = curl_load,
  .unload = curl_unload,
  .config = curl_config,
  .config_complete = curl_config_complete,
  .config_help =
    "[url=]<URL>        (required) The file to serve.\n"
    "user=, password=   Credentials (password=- reads stdin, +FILE a file).\n"
    "header=H           An extra request header (repeatable); cookie=C a cookie.\n"
    "proxy=, proxy-user=, proxy-password=  A proxy.\n"
    "cainfo=, capath=, sslverify=false, ssl-version=, ssl-cipher-list=, tls13-ciphers=  TLS.\n"
    "timeout=SECS, retries=N (default 5), retry-delay=DELAY (default 100ms, doubling).\n"
    "followlocation=false, protocols=P,P, user-agent=, tcp-keepalive=, tcp-nodelay=, unix-socket-path=.",
  .magic_config_key = "url",
  .open = curl_open,
  .get_size = curl_get_size,
  .can_write = curl_no,
  .can_multi_conn = curl_yes,
  .pread = curl_pread,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN(plugin)
