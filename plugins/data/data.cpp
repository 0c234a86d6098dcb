// data: a small disk described on the command line, in nbdkit's data
// format ("0 1 2 3 @0x1fe 0x55 0xaa", strings, words, files, scripts,
// groups, repeats, slices, names and variables), as raw bytes (raw=) or in
// base64 (base64=).  The disk is held in memory, writable, sparse (or
// zstd-compressed with allocator=zstd).
//
// An expression evaluates to a Blob: a length and the pieces of it that
// hold bytes, so "@1T 1" costs one byte, and repeats and slices move
// pieces instead of copying zeroes.  The result is then written into the
// page store once, at configuration.
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../memory/page-map.h"

namespace {

using nbdcage::pages::PageMap;

// At most this many bytes of data (not of disk: holes are free).
constexpr uint64_t kMaxStored = 1ull << 30;

struct Blob {
  uint64_t length = 0;
  std::vector<std::pair<uint64_t, std::string>> pieces;  // (offset, bytes), later ones win
  uint64_t stored() const {
    uint64_t n = 0;
    for (const auto& p : pieces) n += p.second.size();
    return n;
  }
  void put(uint64_t at, const Blob& b) {
    for (const auto& [o, bytes] : b.pieces) pieces.emplace_back(at + o, bytes);
  }
};

struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Names (\NAME) of a scope and those around it.
struct Scope {
  const Scope* outer = nullptr;
  std::map<std::string, Blob> names;
  const Blob* find(const std::string& n) const {
    auto it = names.find(n);
    if (it != names.end()) return &it->second;
    return outer ? outer->find(n) : nullptr;
  }
};

std::map<std::string, std::string> g_vars;  // the other KEY=VALUE parameters, for $VAR

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  Blob parseAll() {
    Scope top;
    Blob b = sequence(top, '\0');
    skipSpace();
    if (i_ < s_.size()) fail("unexpected '" + std::string(1, s_[i_]) + "'");
    return b;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw ParseError(why + " at character " + std::to_string(i_ + 1));
  }

  void skipSpace() {
    for (;;) {
      while (i_ < s_.size() && isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (i_ < s_.size() && s_[i_] == '#') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
        continue;
      }
      return;
    }
  }

  // A number: decimal, 0octal or 0xhex.
  uint64_t number() {
    size_t start = i_;
    int base = 10;
    if (i_ + 1 < s_.size() && s_[i_] == '0' && (s_[i_ + 1] == 'x' || s_[i_ + 1] == 'X')) base = 16, i_ += 2;
    else if (i_ < s_.size() && s_[i_] == '0') base = 8;
    uint64_t v = 0;
    size_t digits = 0;
    for (; i_ < s_.size(); ++i_, ++digits) {
      int d = isdigit(static_cast<unsigned char>(s_[i_])) ? s_[i_] - '0'
              : isxdigit(static_cast<unsigned char>(s_[i_])) ? (tolower(s_[i_]) - 'a' + 10)
                                                              : 99;
      if (d >= base) break;
      if (v > (UINT64_MAX - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) fail("number too large");
      v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
    }
    if (digits == 0 && !(base == 8 && i_ > start)) fail("a number was expected");
    return v;
  }

  std::string word() {  // \NAME's NAME, $VAR's VAR
    size_t start = i_;
    while (i_ < s_.size() && (isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' || s_[i_] == '_')) ++i_;
    if (i_ == start) fail("a name was expected");
    return s_.substr(start, i_ - start);
  }

  static Blob bytes(std::string b) {
    Blob r;
    r.length = b.size();
    if (!b.empty()) r.pieces.emplace_back(0, std::move(b));
    return r;
  }

  std::string quoted() {  // after the opening '"'
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("a string ends in '\\'");
      char e = s_[i_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'x': {
          int v = 0, n = 0;
          while (n < 2 && i_ < s_.size() && isxdigit(static_cast<unsigned char>(s_[i_]))) {
            v = v * 16 + (isdigit(static_cast<unsigned char>(s_[i_])) ? s_[i_] - '0' : tolower(s_[i_]) - 'a' + 10);
            ++i_, ++n;
          }
          if (n == 0) fail("\\x needs hex digits");
          out += static_cast<char>(v);
          break;
        }
        default: out += e;  // \\ \" and the rest stand for themselves
      }
    }
    if (i_ >= s_.size()) fail("a string is not closed");
    ++i_;
    return out;
  }

  // <(SCRIPT): its output, at most `limit` bytes (the script is stopped then).
  static std::string runScript(const std::string& script, uint64_t limit) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) throw ParseError(std::string("pipe: ") + strerror(errno));
    pid_t pid = fork();
    if (pid < 0) throw ParseError(std::string("fork: ") + strerror(errno));
    if (pid == 0) {
      dup2(p[1], STDOUT_FILENO);
      execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(p[1]);
    std::string out;
    char buf[65536];
    for (;;) {
      if (out.size() >= limit) break;
      ssize_t n = read(p[0], buf, std::min<uint64_t>(sizeof buf, limit - out.size()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    close(p[0]);  // a script still writing gets SIGPIPE and ends
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    bool cut = out.size() >= limit;
    if (!cut && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
      throw ParseError("the script <(" + script + ") failed (" +
                       (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                          : "signal " + std::to_string(WTERMSIG(status))) +
                       ")");
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  // An optional [A:B] right after a script: how much of its output to read.
  uint64_t peekSliceEnd() const {
    size_t j = i_;
    while (j < s_.size() && isspace(static_cast<unsigned char>(s_[j]))) ++j;
    if (j >= s_.size() || s_[j] != '[') return kMaxStored;
    size_t colon = s_.find(':', j), close = s_.find(']', j);
    if (colon == std::string::npos || close == std::string::npos || colon > close) return kMaxStored;
    std::string end = s_.substr(colon + 1, close - colon - 1);
    if (end.find_first_not_of(" \t") == std::string::npos) return kMaxStored;
    return std::strtoull(end.c_str(), nullptr, 0);
  }

  // One primary expression, or nothing (an offset move) when it only moved.
  std::optional<Blob> primary(Scope& scope, uint64_t& offset, uint64_t& high) {
    char c = s_[i_];
    if (c == '@') {
      ++i_;
      char op = i_ < s_.size() ? s_[i_] : '\0';
      if (op == '+' || op == '-' || op == '^') ++i_;
      uint64_t n = number();
      if (op == '+') offset += n;
      else if (op == '-') {
        if (n > offset) fail("@-" + std::to_string(n) + " moves before the start");
        offset -= n;
      } else if (op == '^') {
        if (n == 0) fail("@^0 is not an alignment");
        if (offset % n) offset += n - offset % n;
      } else offset = n;
      high = std::max(high, offset);
      return std::nullopt;
    }
    if (c == '(') {
      ++i_;
      Scope inner;
      inner.outer = &scope;
      Blob b = sequence(inner, ')');
      if (i_ >= s_.size() || s_[i_] != ')') fail("'(' is not closed");
      ++i_;
      return b;
    }
    if (c == '"') {
      ++i_;
      return bytes(quoted());
    }
    if (c == '<') {
      ++i_;
      if (i_ < s_.size() && s_[i_] == '(') {
        size_t start = ++i_;
        int depth = 1;
        while (i_ < s_.size() && depth > 0) {
          if (s_[i_] == '(') ++depth;
          else if (s_[i_] == ')') --depth;
          ++i_;
        }
        if (depth != 0) fail("'<(' is not closed");
        return bytes(runScript(s_.substr(start, i_ - 1 - start), peekSliceEnd()));
      }
      size_t start = i_;
      while (i_ < s_.size() && !isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
      std::string path = s_.substr(start, i_ - start);
      std::ifstream f(path, std::ios::binary);
      if (!f) fail("<" + path + ": " + strerror(errno));
      std::ostringstream all;
      all << f.rdbuf();
      return bytes(all.str());
    }
    if (c == '\\') {
      ++i_;
      std::string name = word();
      const Blob* b = scope.find(name);
      if (!b) fail("\\" + name + " is not defined");
      return *b;
    }
    if (c == '$') {
      ++i_;
      std::string name = word();
      std::string text;
      if (auto it = g_vars.find(name); it != g_vars.end()) text = it->second;
      else if (const char* env = getenv(name.c_str())) text = env;
      else
        fail("$" + name + " is neither a parameter nor in the environment (the sandbox passes the plugin little of "
             "nbdcage's environment: give it as a parameter, " + name + "=...)");
      Parser sub(text);
      return sub.parseAll();
    }
    for (const char* w : {"le16:", "be16:", "le32:", "be32:", "le64:", "be64:"}) {
      if (s_.compare(i_, 5, w) != 0) continue;
      i_ += 5;
      unsigned bits = static_cast<unsigned>(std::atoi(w + 2));
      uint64_t v = number();
      if (bits < 64 && v >> bits) fail(std::string(w) + std::to_string(v) + " does not fit");
      std::string out(bits / 8, '\0');
      for (unsigned k = 0; k < bits / 8; ++k) {
        unsigned shift = w[0] == 'l' ? k * 8 : (bits / 8 - 1 - k) * 8;
        out[k] = static_cast<char>((v >> shift) & 0xff);
      }
      return bytes(out);
    }
    if (isdigit(static_cast<unsigned char>(c))) {
      uint64_t v = number();
      if (v > 255) fail(std::to_string(v) + " is not a byte (use le16: and the like for words)");
      return bytes(std::string(1, static_cast<char>(v)));
    }
    fail("unexpected '" + std::string(1, c) + "'");
  }

  // Postfix: * N, [A:B], -> \NAME (the last makes it a definition).
  bool postfix(Scope& scope, Blob& b) {
    for (;;) {
      skipSpace();
      if (i_ >= s_.size()) return true;
      if (s_[i_] == '*') {
        ++i_;
        skipSpace();
        uint64_t n = number();
        if (n != 0 && b.stored() > kMaxStored / n) fail("the repeat makes more than 1 GiB of data");
        if (n != 0 && b.length > UINT64_MAX / n) fail("the repeat makes a disk too large");
        Blob r;
        r.length = b.length * n;
        for (uint64_t k = 0; k < n; ++k) r.put(k * b.length, b);
        b = std::move(r);
      } else if (s_[i_] == '[') {
        ++i_;
        skipSpace();
        uint64_t from = i_ < s_.size() && s_[i_] != ':' ? number() : 0;
        skipSpace();
        if (i_ >= s_.size() || s_[i_] != ':') fail("a slice needs ':'");
        ++i_;
        skipSpace();
        uint64_t to = i_ < s_.size() && s_[i_] != ']' ? number() : b.length;
        skipSpace();
        if (i_ >= s_.size() || s_[i_] != ']') fail("a slice needs ']'");
        ++i_;
        to = std::min(to, b.length);
        if (from > to) fail("a slice ends before it starts");
        Blob r;
        r.length = to - from;
        for (const auto& [o, bytes] : b.pieces) {
          uint64_t s0 = std::max(o, from), e0 = std::min<uint64_t>(o + bytes.size(), to);
          if (s0 < e0) r.pieces.emplace_back(s0 - from, bytes.substr(s0 - o, e0 - s0));
        }
        b = std::move(r);
      } else if (s_.compare(i_, 2, "->") == 0) {
        i_ += 2;
        skipSpace();
        if (i_ >= s_.size() || s_[i_] != '\\') fail("-> needs a \\NAME");
        ++i_;
        scope.names[word()] = std::move(b);
        return false;  // defined, not written
      } else {
        return true;
      }
    }
  }

  Blob sequence(Scope& scope, char end) {
    Blob out;
    uint64_t offset = 0, high = 0;
    for (;;) {
      skipSpace();
      if (i_ >= s_.size() || (end && s_[i_] == end)) break;
      std::optional<Blob> e = primary(scope, offset, high);
      if (!e) continue;
      Blob b = std::move(*e);
      if (!postfix(scope, b)) continue;
      if (b.length > UINT64_MAX - offset) fail("the disk is too large");
      out.put(offset, b);
      if (out.stored() > kMaxStored) fail("more than 1 GiB of data");
      offset += b.length;
      high = std::max(high, offset);
    }
    out.length = high;
    return out;
  }

  const std::string& s_;
  size_t i_ = 0;
};

std::string base64Decode(const std::string& in) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (isspace(static_cast<unsigned char>(c)) || c == '=') continue;
    size_t v = alphabet.find(c);
    if (v == std::string::npos) throw ParseError(std::string("base64: '") + c + "' is not a base64 character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

enum class Source { kNone, kData, kRaw, kBase64 };
Source g_source = Source::kNone;
std::string g_text;
int64_t g_size = -1;  // size=: truncate or extend
bool g_zstd = false;
std::unique_ptr<PageMap> g_pages;
uint64_t g_diskSize = 0;

int dataConfig(const char* key, const char* value) {
  std::string k = key;
  if (k == "data" || k == "raw" || k == "base64") {
    if (g_source != Source::kNone) {
      nbdkit_error("give only one of data=, raw= and base64=");
      return -1;
    }
    g_source = k == "data" ? Source::kData : k == "raw" ? Source::kRaw : Source::kBase64;
    g_text = value;
    return 0;
  }
  if (k == "size") {
    g_size = nbdkit_parse_size(value);
    return g_size < 0 ? -1 : 0;
  }
  if (k == "allocator") {
    std::string a = value;
    a = a.substr(0, a.find(','));
    if (a != "sparse" && a != "zstd" && a != "malloc") {
      nbdkit_error("allocator=%s: the allocator must be sparse, malloc or zstd", value);
      return -1;
    }
    g_zstd = a == "zstd";  // malloc: kept sparse here (the same bytes)
    return 0;
  }
  g_vars[k] = value;  // for $VAR in data=
  return 0;
}

int dataConfigComplete() {
  Blob image;
  try {
    if (g_source == Source::kNone) throw ParseError("one of data=, raw= or base64= is required, e.g. data '1 2 3'");
    if (g_source == Source::kData) {
      Parser p(g_text);
      image = p.parseAll();
    } else {
      image.pieces.clear();
      std::string b = g_source == Source::kRaw ? g_text : base64Decode(g_text);
      image.length = b.size();
      if (!b.empty()) image.pieces.emplace_back(0, std::move(b));
    }
  } catch (const ParseError& e) {
    nbdkit_error("data: %s", e.what());
    return -1;
  }
  g_diskSize = g_size >= 0 ? static_cast<uint64_t>(g_size) : image.length;
  g_pages = std::make_unique<PageMap>(g_zstd);
  for (const auto& [o, bytes] : image.pieces) {
    if (o >= g_diskSize) continue;
    uint64_t n = std::min<uint64_t>(bytes.size(), g_diskSize - o);
    for (uint64_t done = 0; done < n;) {  // the store takes 32-bit counts
      uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(n - done, 1u << 30));
      if (!g_pages->write(reinterpret_cast<const uint8_t*>(bytes.data()) + done, chunk, o + done)) return -1;
      done += chunk;
    }
  }
  nbdkit_debug("data: %" PRIu64 " bytes of disk, %zu pieces of data", g_diskSize, image.pieces.size());
  return 0;
}

void* dataOpen(int) { return NBDKIT_HANDLE_NOT_NEEDED; }
int64_t dataGetSize(void*) { return static_cast<int64_t>(g_diskSize); }
int dataYes(void*) { return 1; }
int dataFuaNative(void*) { return NBDKIT_FUA_NATIVE; }

int dataPread(void*, void* buf, uint32_t count, uint64_t offset, uint32_t) {
  g_pages->read(static_cast<uint8_t*>(buf), count, offset);
  return 0;
}
int dataPwrite(void*, const void* buf, uint32_t count, uint64_t offset, uint32_t) {
  return g_pages->write(static_cast<const uint8_t*>(buf), count, offset) ? 0 : -1;
}
int dataZero(void*, uint32_t count, uint64_t offset, uint32_t) {
  return g_pages->write(nullptr, count, offset) ? 0 : -1;
}
int dataTrim(void* h, uint32_t count, uint64_t offset, uint32_t flags) { return dataZero(h, count, offset, flags); }
int dataFlush(void*, uint32_t) { return 0; }

int dataExtents(void*, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents* extents) {
  return g_pages->extents(offset, std::min<uint64_t>(offset + count, g_diskSize), flags, extents);
}

void dataUnload() { g_pages.reset(); }

struct nbdkit_plugin makePlugin() {
  struct nbdkit_plugin p {};
  p.name = "data";
  p.longname = "nbdcage data plugin";
  p.version = NBDCAGE_VERSION;
  p.description = "A disk described on the command line (nbdkit's data format), held in memory, writable.";
  p.unload = dataUnload;
  p.config = dataConfig;
  p.config_complete = dataConfigComplete;
  p.config_help =
      "[data=]<DATA>   The disk in nbdkit's data format, e.g. '0 1 2 3 @0x1fe 0x55 0xaa'.\n"
      "raw=<BYTES>     The disk's bytes as they are.\n"
      "base64=<TEXT>   The disk's bytes in base64.\n"
      "size=<SIZE>     Truncate or extend (with zeroes) to SIZE.\n"
      "allocator=sparse|zstd|malloc  How the disk is kept in memory.\n"
      "KEY=VALUE       A variable for $KEY in data=.";
  p.magic_config_key = "data";
  p.open = dataOpen;
  p.get_size = dataGetSize;
  p.can_write = dataYes;
  p.can_flush = dataYes;
  p.can_trim = dataYes;
  p.can_zero = dataYes;
  p.can_fast_zero = dataYes;
  p.can_fua = dataFuaNative;
  p.can_multi_conn = dataYes;
  p.can_extents = dataYes;
  p.pread = dataPread;
  p.pwrite = dataPwrite;
  p.zero = dataZero;
  p.trim = dataTrim;
  p.flush = dataFlush;
  p.extents = dataExtents;
  p.errno_is_preserved = 1;
  return p;
}

struct nbdkit_plugin plugin = makePlugin();

}  // namespace

NBDKIT_REGISTER_PLUGIN(plugin)
