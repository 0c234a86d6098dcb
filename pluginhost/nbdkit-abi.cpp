// The nbdkit_* helper functions, exported from the nbdcage-pluginhost
// executable (see nbdkit.syms) so that plugins built against
// nbdcage-plugin.h, or against nbdkit's own header, resolve them at dlopen.
// Semantics follow nbdkit's documentation; the code is our own.
#include <algorithm>
#include <climits>
#include <limits>
#include <type_traits>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include "pluginhost/abi-context.h"

namespace nbdcage::host {
namespace {

std::string g_logName = "plugin";
bool g_verbose = false;
std::atomic<bool> g_shutdown{false};

thread_local const Connection* t_connection = nullptr;
thread_local int t_error = 0;
thread_local std::string t_errorMessage;

std::mutex g_shutdownLock;
std::function<void()> g_shutdownHook;  // guarded by g_shutdownLock

// nbdkit_nanosleep waits here, so that a shutdown can end the sleep.
std::mutex g_sleepLock;
std::condition_variable g_sleepWake;
bool g_stopping = false;  // guarded by g_sleepLock: the plugin or the server is stopping

void wakeSleepers() {
  {
    std::lock_guard lock(g_sleepLock);
    g_stopping = true;
  }
  g_sleepWake.notify_all();
}

std::mutex g_internLock;
std::vector<std::unique_ptr<char[]>> g_interned;  // lives as long as the host

const char* intern(std::string s) {
  auto copy = std::make_unique<char[]>(s.size() + 1);
  std::memcpy(copy.get(), s.c_str(), s.size() + 1);
  std::lock_guard lock(g_internLock);
  g_interned.push_back(std::move(copy));
  return g_interned.back().get();
}

std::string vformat(const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n < 0) return fmt;
  std::string out(static_cast<size_t>(n), '\0');
  vsnprintf(out.data(), out.size() + 1, fmt, args);
  return out;
}

void emit(const char* level, const std::string& text) {
  std::string line = "nbdcage: " + g_logName + ": " + level + ": " + text;
  if (line.empty() || line.back() != '\n') line += '\n';
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

// strtoimax/strtoumax with nbdkit's rules: base 0, whole string, no
// leading '-' for unsigned types, range-checked by the caller.
template <typename T>
int parseInteger(const char* what, const char* str, T* r) {
  const char* p = str;
  while (isspace(static_cast<unsigned char>(*p))) p++;
  errno = 0;
  char* end;
  if constexpr (std::is_signed_v<T>) {
    intmax_t v = strtoimax(str, &end, 0);
    if (errno == 0 && (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())) errno = ERANGE;
    if (errno == 0 && end != str && *end == '\0') {
      if (r) *r = static_cast<T>(v);
      return 0;
    }
  } else {
    uintmax_t v = *p == '-' ? (errno = ERANGE, 0) : strtoumax(str, &end, 0);
    if (errno == 0 && v > std::numeric_limits<T>::max()) errno = ERANGE;
    if (errno == 0 && end != str && *end == '\0') {
      if (r) *r = static_cast<T>(v);
      return 0;
    }
  }
  if (errno == ERANGE)
    nbdkit_error("%s: could not parse number: \"%s\": value out of range", what, str);
  else
    nbdkit_error("%s: could not parse number: \"%s\"", what, str);
  errno = EINVAL;
  return -1;
}

}  // namespace

void setLogName(const std::string& name) { g_logName = name; }
void setVerbose(bool verbose) { g_verbose = verbose; }

// Whether the plugin may use stdin and stdout while it configures itself:
// the first host gets nbdcage's stdin for that (not with -s, where stdin
// is the client); restarted hosts, and every host once configured, get
// /dev/null.  (stdout is always our stderr, or the probe's stdout.)
std::atomic<bool> g_stdioSafe{false};
void setStdioSafe(bool safe) { g_stdioSafe = safe; }
void setThreadConnection(const Connection* connection) { t_connection = connection; }

thread_local std::atomic<int>* t_disconnect = nullptr;
void setThreadDisconnect(std::atomic<int>* flag) { t_disconnect = flag; }

int takeThreadError() {
  int e = t_error;
  t_error = 0;
  return e;
}

std::string takeThreadErrorMessage() {
  std::string m = std::move(t_errorMessage);
  t_errorMessage.clear();
  return m;
}

bool shutdownRequested() { return g_shutdown.load(); }

void serverStopping() { wakeSleepers(); }

void setShutdownHook(std::function<void()> hook) {
  std::lock_guard lock(g_shutdownLock);
  g_shutdownHook = std::move(hook);
}

}  // namespace nbdcage::host

using namespace nbdcage::host;

extern "C" {

void nbdkit_verror(const char* fmt, va_list args) {
  int saved = errno;
  std::string text = vformat(fmt, args);
  t_errorMessage = text;
  emit("error", text);
  errno = saved;
}

void nbdkit_error(const char* fmt, ...) {
  int saved = errno;
  va_list args;
  va_start(args, fmt);
  errno = saved;  // for %m
  nbdkit_verror(fmt, args);
  va_end(args);
  errno = saved;
}

void nbdkit_vdebug(const char* fmt, va_list args) {
  if (!g_verbose) return;
  int saved = errno;
  emit("debug", vformat(fmt, args));
  errno = saved;
}

void nbdkit_debug(const char* fmt, ...) {
  if (!g_verbose) return;
  int saved = errno;
  va_list args;
  va_start(args, fmt);
  errno = saved;
  nbdkit_vdebug(fmt, args);
  va_end(args);
  errno = saved;
}

void nbdkit_set_error(int err) { t_error = err; }

char* nbdkit_absolute_path(const char* path) {
  if (path == nullptr || *path == '\0') {
    nbdkit_error("cannot convert an empty path to an absolute path");
    return nullptr;
  }
  if (*path == '/') return strdup(path);
  char* cwd = getcwd(nullptr, 0);
  if (cwd == nullptr) {
    nbdkit_error("getcwd: %m");
    return nullptr;
  }
  std::string full = std::string(cwd) + "/" + path;
  free(cwd);
  return strdup(full.c_str());
}

char* nbdkit_realpath(const char* path) {
  if (path == nullptr || *path == '\0') {
    nbdkit_error("cannot resolve an empty path");
    return nullptr;
  }
  char* r = realpath(path, nullptr);
  if (r == nullptr) nbdkit_error("realpath: %s: %m", path);
  return r;
}

int64_t nbdkit_parse_size(const char* str) {
  errno = 0;
  char* end;
  if (str == nullptr || !isdigit(static_cast<unsigned char>(*str))) {
    nbdkit_error("could not parse size string (%s)", str ? str : "");
    return -1;
  }
  uintmax_t v = strtoumax(str, &end, 10);
  if (errno == ERANGE || end == str) {
    nbdkit_error("could not parse size string (%s)", str);
    return -1;
  }
  int shift = 0;
  switch (*end) {
    case '\0': break;
    case 'b': case 'B': shift = 0; end++; break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    case 'p': case 'P': shift = 50; end++; break;
    case 'e': case 'E': shift = 60; end++; break;
    case 's': case 'S': shift = 9; end++; break;  // 512-byte sectors
    default: break;
  }
  if (shift > 0 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) end += strlen(end);
  if (*end != '\0') {
    nbdkit_error("could not parse size: unknown suffix '%s'", end);
    return -1;
  }
  if (v > static_cast<uintmax_t>(INT64_MAX) >> shift) {
    nbdkit_error("size (%s) exceeds maximum value", str);
    return -1;
  }
  return static_cast<int64_t>(v << shift);
}

int nbdkit_parse_bool(const char* str) {
  static const char* const yes[] = {"1", "true", "t", "yes", "y", "on"};
  static const char* const no[] = {"0", "false", "f", "no", "n", "off"};
  for (const char* s : yes)
    if (strcasecmp(str, s) == 0) return 1;
  for (const char* s : no)
    if (strcasecmp(str, s) == 0) return 0;
  nbdkit_error("could not decipher boolean (%s)", str);
  return -1;
}

int nbdkit_parse_int(const char* w, const char* s, int* r) { return parseInteger(w, s, r); }
int nbdkit_parse_unsigned(const char* w, const char* s, unsigned* r) { return parseInteger(w, s, r); }
int nbdkit_parse_int8_t(const char* w, const char* s, int8_t* r) { return parseInteger(w, s, r); }
int nbdkit_parse_uint8_t(const char* w, const char* s, uint8_t* r) { return parseInteger(w, s, r); }
int nbdkit_parse_int16_t(const char* w, const char* s, int16_t* r) { return parseInteger(w, s, r); }
int nbdkit_parse_uint16_t(const char* w, const char* s, uint16_t* r) { return parseInteger(w, s, r); }
int nbdkit_parse_int32_t(const char* w, const char* s, int32_t* r) { return parseInteger(w, s, r); }
int nbdkit_parse_uint32_t(const char* w, const char* s, uint32_t* r) { return parseInteger(w, s, r); }
int nbdkit_parse_int64_t(const char* w, const char* s, int64_t* r) { return parseInteger(w, s, r); }
int nbdkit_parse_uint64_t(const char* w, const char* s, uint64_t* r) { return parseInteger(w, s, r); }

// password=-: one line from nbdcage's stdin, which the first host has
// while it configures its plugin; on a terminal, with a prompt and no echo.
static int readPasswordFromStdin(char** password) {
  if (!g_stdioSafe) {
    nbdkit_error("password=-: standard input is not available here (with -s it is the client; a restarted plugin "
                 "host has none); use password=+FILE");
    return -1;
  }
  bool tty = isatty(STDIN_FILENO);
  struct termios saved;
  if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
    struct termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    (void)!write(STDIN_FILENO, "password: ", 10);  // a terminal is read-write; our stderr is a relayed pipe
  } else {
    tty = false;
  }
  std::string line;
  char c;
  ssize_t n;
  while ((n = read(STDIN_FILENO, &c, 1)) == 1 && c != '\n') line += c;
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    (void)!write(STDIN_FILENO, "\n", 1);
  }
  if (n < 0) {
    nbdkit_error("password=-: reading standard input: %m");
    return -1;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  *password = strdup(line.c_str());
  return *password ? 0 : -1;
}

// password=-FD: one line (or all, up to EOF) from descriptor FD, which is
// then closed.  nbdcage hands the first plugin host the descriptors named
// so on its command line (renumbered, the parameter rewritten).
static int readPasswordFromFd(const char* value, char** password) {
  char* end;
  errno = 0;
  long fd = strtol(value + 1, &end, 10);
  if (*end != '\0' || errno != 0 || fd < 0 || fd > INT_MAX) {
    nbdkit_error("password=%s: after '-' comes a file descriptor number", value);
    return -1;
  }
  if (fd <= 2 || fcntl(static_cast<int>(fd), F_GETFD) == -1) {
    nbdkit_error("password=%s: descriptor %ld is not open here (give nbdcage an open descriptor, e.g. 3<FILE, and "
                 "note that a restarted plugin host has none)", value, fd);
    return -1;
  }
  std::string line;
  char c;
  ssize_t n;
  while ((n = read(static_cast<int>(fd), &c, 1)) == 1 && c != '\n') line += c;
  int saved = errno;
  close(static_cast<int>(fd));
  if (n < 0) {
    errno = saved;
    nbdkit_error("password=%s: %m", value);
    return -1;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  *password = strdup(line.c_str());
  return *password ? 0 : -1;
}

int nbdkit_read_password(const char* value, char** password) {
  *password = nullptr;
  if (value[0] == '+') {
    FILE* f = fopen(value + 1, "re");
    if (f == nullptr) {
      nbdkit_error("open %s: %m", value + 1);
      return -1;
    }
    char* line = nullptr;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    if (n < 0) {
      free(line);
      line = strdup("");
    } else if (n > 0 && line[n - 1] == '\n') {
      line[n - 1] = '\0';
    }
    *password = line;
    return 0;
  }
  if (std::strcmp(value, "-") == 0) return readPasswordFromStdin(password);
  if (value[0] == '-' && value[1] != '\0') return readPasswordFromFd(value, password);
  *password = strdup(value);
  return *password ? 0 : -1;
}

int nbdkit_stdio_safe(void) { return g_stdioSafe ? 1 : 0; }

int nbdkit_nanosleep(unsigned sec, unsigned nsec) {
  auto duration = std::chrono::seconds(sec) + std::chrono::nanoseconds(nsec);
  std::unique_lock lock(g_sleepLock);
  if (g_sleepWake.wait_for(lock, duration, [] { return g_stopping; })) {
    nbdkit_error("aborting sleep: the server is shutting down");
    errno = ESHUTDOWN;
    return -1;
  }
  return 0;
}

void nbdkit_shutdown(void) {
  if (g_shutdown.exchange(true)) return;
  wakeSleepers();
  std::lock_guard lock(g_shutdownLock);
  if (g_shutdownHook) g_shutdownHook();
}

const char* nbdkit_export_name(void) {
  if (t_connection == nullptr) {
    nbdkit_error("no connection in this context");
    return nullptr;
  }
  return t_connection->exportName.c_str();
}

int nbdkit_is_tls(void) { return 0; }

void nbdkit_disconnect(int force) {
  if (t_disconnect == nullptr) {
    nbdkit_debug("nbdkit_disconnect outside a data call: there is no client to disconnect here");
    return;
  }
  int want = force ? 2 : 1, now = t_disconnect->load();
  while (now < want && !t_disconnect->compare_exchange_weak(now, want)) {
  }
}

// No label is known: the frontend holds the socket, and asks for none.
char* nbdkit_peer_security_context(void) {
  nbdkit_error("nbdkit_peer_security_context: no security label is known for this client");
  return nullptr;
}
// Without TLS there is no certificate: "" (not an error), as nbdkit says.
char* nbdkit_peer_tls_dn(void) { return strdup(""); }
char* nbdkit_peer_tls_issuer_dn(void) { return strdup(""); }

int nbdkit_parse_delay(const char* what, const char* str, unsigned* sec, unsigned* nsec) {
  // A decimal number, then s (or nothing), ms, us or μs, or ns.
  const char* p = str;
  uint64_t whole = 0, frac = 0, fracDigits = 0;
  bool digits = false;
  while (*p >= '0' && *p <= '9' && whole < UINT64_MAX / 100) whole = whole * 10 + static_cast<unsigned>(*p++ - '0'), digits = true;
  if (*p == '.') {
    ++p;
    while (*p >= '0' && *p <= '9') {
      if (fracDigits < 9) frac = frac * 10 + static_cast<unsigned>(*p - '0'), ++fracDigits;
      ++p, digits = true;
    }
  }
  uint64_t scale;  // nanoseconds per unit
  std::string unit = p;
  if (unit.empty() || unit == "s") scale = 1000000000;
  else if (unit == "ms") scale = 1000000;
  else if (unit == "us" || unit == "\u03bcs" || unit == "\u00b5s") scale = 1000;
  else if (unit == "ns") scale = 1;
  else scale = 0;
  while (fracDigits < 9) frac *= 10, ++fracDigits;  // now in 1e-9 of a unit
  if (!digits || scale == 0 || whole > UINT64_MAX / scale) {
    nbdkit_error("%s: could not parse delay '%s' (give e.g. 1.5, 100ms, 10us or 500ns)", what, str);
    return -1;
  }
  uint64_t ns = whole * scale + frac * scale / 1000000000;
  if (ns / 1000000000 > UINT_MAX) {
    nbdkit_error("%s: delay '%s' is too long", what, str);
    return -1;
  }
  if (sec) *sec = static_cast<unsigned>(ns / 1000000000);
  if (nsec) *nsec = static_cast<unsigned>(ns % 1000000000);
  return 0;
}

int nbdkit_parse_probability(const char* what, const char* str, double* r) {
  // N, N%, N:M or N/M (N and M floating point; M not zero).
  char* end;
  errno = 0;
  double a = strtod(str, &end);
  bool ok = end != str && errno == 0;
  if (ok && *end == '%') {
    a /= 100, ++end;
  } else if (ok && (*end == ':' || *end == '/')) {
    const char* b0 = end + 1;
    double b = strtod(b0, &end);
    ok = end != b0 && b != 0;
    a = ok ? a / b : 0;
  }
  if (!ok || *end != '\0' || !std::isfinite(a) || a < 0) {
    nbdkit_error("%s: could not parse probability '%s' (give e.g. 0.1, 10%%, 1:10 or 1/10)", what, str);
    return -1;
  }
  *r = a;
  return 0;
}

const char* nbdkit_timestamp(void) {
  thread_local char text[64];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(text + n, sizeof text - n, ".%06ld", ts.tv_nsec / 1000);
  return text;
}

namespace {
// One hexdump row of up to 16 bytes: "PREFIXOFFSET: xx xx ...  |text|".
std::string hexRow(const uint8_t* b, size_t n, const char* prefix, const char* mark, uint64_t offset) {
  char line[128];
  int at = snprintf(line, sizeof line, "%s%s%08" PRIx64 ":", prefix ? prefix : "", mark, offset);
  for (size_t i = 0; i < 16; ++i)
    at += i < n ? snprintf(line + at, sizeof line - static_cast<size_t>(at), "%s %02x", i == 8 ? " " : "", b[i])
                : snprintf(line + at, sizeof line - static_cast<size_t>(at), "%s   ", i == 8 ? " " : "");
  std::string out(line, static_cast<size_t>(at));
  out += "  |";
  for (size_t i = 0; i < n; ++i) out += b[i] >= 32 && b[i] < 127 ? static_cast<char>(b[i]) : '.';
  return out + "|";
}
}  // namespace

void nbdkit_debug_hexdump(const void* buf, size_t len, const char* prefix, uint64_t start) {
  if (!g_verbose) return;
  const auto* b = static_cast<const uint8_t*>(buf);
  for (size_t i = 0; i < len; i += 16)
    emit("debug", hexRow(b + i, std::min<size_t>(16, len - i), prefix, "", start + i));
}

void nbdkit_debug_hexdiff(const void* buf1, const void* buf2, size_t len, const char* prefix, uint64_t start) {
  if (!g_verbose) return;
  const auto* a = static_cast<const uint8_t*>(buf1);
  const auto* b = static_cast<const uint8_t*>(buf2);
  for (size_t i = 0; i < len; i += 16) {
    size_t n = std::min<size_t>(16, len - i);
    if (memcmp(a + i, b + i, n) == 0) {
      emit("debug", hexRow(a + i, n, prefix, " ", start + i));
    } else {
      emit("debug", hexRow(a + i, n, prefix, "-", start + i));
      emit("debug", hexRow(b + i, n, prefix, "+", start + i));
    }
  }
}

// As nbdkit: copies at most *addrlen bytes and sets *addrlen to the full
// length (getpeername's contract).
int nbdkit_peer_name(struct sockaddr* addr, socklen_t* addrlen) {
  if (t_connection == nullptr) {
    nbdkit_error("no connection in this context");
    return -1;
  }
  const auto& a = t_connection->peerAddress;
  if (a.empty()) {
    nbdkit_error("the client's address is unknown (not a socket)");
    return -1;
  }
  memcpy(addr, a.data(), std::min<size_t>(*addrlen, a.size()));
  *addrlen = static_cast<socklen_t>(a.size());
  return 0;
}

namespace {
int64_t peerCredential(int64_t Connection::*field) {
  if (t_connection == nullptr) {
    nbdkit_error("no connection in this context");
    return -1;
  }
  if (!t_connection->hasCredentials) {
    nbdkit_error("the client's credentials are only known on a Unix domain socket");
    return -1;
  }
  return t_connection->*field;
}
}  // namespace

int64_t nbdkit_peer_pid(void) { return peerCredential(&Connection::pid); }
int64_t nbdkit_peer_uid(void) { return peerCredential(&Connection::uid); }
int64_t nbdkit_peer_gid(void) { return peerCredential(&Connection::gid); }

const char* nbdkit_strdup_intern(const char* s) { return intern(s); }
const char* nbdkit_strndup_intern(const char* s, size_t n) { return intern(std::string(s, strnlen(s, n))); }
const char* nbdkit_vprintf_intern(const char* fmt, va_list args) { return intern(vformat(fmt, args)); }
const char* nbdkit_printf_intern(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  const char* r = nbdkit_vprintf_intern(fmt, args);
  va_end(args);
  return r;
}

// ---- extents ----
struct nbdkit_extent {
  uint64_t offset;
  uint64_t length;
  uint32_t type;
};

struct nbdkit_extents* nbdkit_extents_new(uint64_t start, uint64_t end) {
  if (start > end || end > static_cast<uint64_t>(INT64_MAX)) {
    nbdkit_error("nbdkit_extents_new: bad range %" PRIu64 "..%" PRIu64, start, end);
    errno = ERANGE;
    return nullptr;
  }
  auto* e = new nbdkit_extents;
  e->start = start;
  e->end = end;
  return e;
}

void nbdkit_extents_free(struct nbdkit_extents* e) { delete e; }
size_t nbdkit_extents_count(const struct nbdkit_extents* e) { return e->list.size(); }
struct nbdkit_extent nbdkit_get_extent(const struct nbdkit_extents* e, size_t i) {
  const auto& x = e->list.at(i);
  return {x.offset, x.length, x.type};
}

// Extents must arrive in order and without gaps.  Parts before `start` are
// dropped, parts after `end` too; neighbours of one type are merged.
int nbdkit_add_extent(struct nbdkit_extents* e, uint64_t offset, uint64_t length, uint32_t type) {
  if (length == 0) return 0;
  if (e->any ? offset != e->next : offset > e->start) {
    nbdkit_error("nbdkit_add_extent: extents must be added in ascending order, without gaps, "
                 "from the requested offset");
    errno = ERANGE;
    return -1;
  }
  if (length > UINT64_MAX - offset) {
    nbdkit_error("nbdkit_add_extent: extent length overflows");
    errno = ERANGE;
    return -1;
  }
  e->any = true;
  e->next = offset + length;
  uint64_t lo = std::max(offset, e->start);
  uint64_t hi = std::min(offset + length, e->end);
  if (lo >= hi) return 0;  // outside the window: accepted and dropped
  if (!e->list.empty() && e->list.back().type == type)
    e->list.back().length += hi - lo;
  else
    e->list.push_back({lo, hi - lo, type});
  return 0;
}

// ---- exports ----
struct nbdkit_export {
  char* name;
  char* description;
};

struct nbdkit_exports* nbdkit_exports_new(void) { return new nbdkit_exports; }
void nbdkit_exports_free(struct nbdkit_exports* e) { delete e; }
size_t nbdkit_exports_count(const struct nbdkit_exports* e) { return e->list.size(); }
struct nbdkit_export nbdkit_get_export(const struct nbdkit_exports* e, size_t i) {
  const auto& x = e->list.at(i);
  return {const_cast<char*>(x.first.c_str()), const_cast<char*>(x.second.c_str())};
}

int nbdkit_add_export(struct nbdkit_exports* e, const char* name, const char* description) {
  if (e->list.size() >= 10000) {
    nbdkit_error("nbdkit_add_export: too many exports");
    errno = EINVAL;
    return -1;
  }
  if (strlen(name) > 4096 || (description && strlen(description) > 4096)) {
    nbdkit_error("nbdkit_add_export: name or description longer than 4096 bytes");
    errno = EINVAL;
    return -1;
  }
  e->list.emplace_back(name, description ? description : "");
  return 0;
}

int nbdkit_use_default_export(struct nbdkit_exports* e) {
  e->useDefault = true;
  return 0;
}

}  // extern "C"
