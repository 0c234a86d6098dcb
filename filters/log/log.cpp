#include "filters/log/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "filters/params.h"
#include "frontend/chain/watch.h"

namespace nbdcage::filters::log {

std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '$' || c == '`') q += '\\';
    q += c;
  }
  return q + "\"";
}

namespace {

const char* action(ipc::Op op) {
  switch (op) {
    case ipc::Op::kRead: return "Read";
    case ipc::Op::kWrite: return "Write";
    case ipc::Op::kFlush: return "Flush";
    case ipc::Op::kTrim: return "Trim";
    case ipc::Op::kCache: return "Cache";
    case ipc::Op::kZero: return "Zero";
    case ipc::Op::kExtents: return "Extents";
  }
  return "Request";
}

const char* errnoName(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EIO: return "EIO";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENOTSUP: return "ENOTSUP";
    case ESHUTDOWN: return "ESHUTDOWN";
    case EOVERFLOW: return "EOVERFLOW";
    default: return "EIO";
  }
}

// The log file, shared by every connection: each line goes in one write
// (O_APPEND), so lines of different connections never mix.
class LogFile {
 public:
  explicit LogFile(int fd) : fd_(fd) {}
  ~LogFile() { close(fd_); }
  __attribute__((format(printf, 2, 3))) void line(const char* fmt, ...) {
    char buf[8192];
    timeval tv;
    gettimeofday(&tv, nullptr);
    tm t;
    localtime_r(&tv.tv_sec, &t);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &t);
    n += static_cast<size_t>(snprintf(buf + n, sizeof buf - n, ".%06ld ", static_cast<long>(tv.tv_usec)));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
    va_end(ap);
    n = std::min(sizeof buf - 2, n + static_cast<size_t>(m < 0 ? 0 : m));
    buf[n++] = '\n';
    ssize_t w;
    do w = write(fd_, buf, n);
    while (w < 0 && errno == EINTR);
  }

 private:
  int fd_;
};

// One connection's handle: Connect when it opens, each request as it goes
// down and as it comes back, Disconnect when it closes.
class Logger final : public chain::Watcher {
 public:
  Logger(LogFile& log, uint64_t connection, const std::string& exportName, const chain::ExportInfo& i)
      : log_(log), c_(connection) {
    log_.line("connection=%" PRIu64 " Connect export=%s tls=0 size=0x%" PRIx64 " minsize=0x%x prefsize=0x%x maxsize=0x%x"
              " write=%d flush=%d rotational=%d trim=%d zero=%d fua=%d extents=%d cache=%d fast_zero=%d",
              c_, quoted(exportName).c_str(), i.size, i.blockMin ? i.blockMin : 1, i.blockPreferred ? i.blockPreferred : 4096,
              i.blockMax ? i.blockMax : 0xffffffffu, i.canWrite, i.canFlush, i.isRotational, i.canTrim,
              i.canZero ? 2 : 0, i.canFua, i.canExtents, i.canCache, i.canFastZero);
  }
  ~Logger() override { log_.line("connection=%" PRIu64 " Disconnect transactions=%" PRIu64, c_, next_ - 1); }

  void sent(const chain::Io& io) override {
    uint64_t id = ids_[io.slot.tag] = next_++;
    bool fua = io.flags & ipc::kFlagFua;
    switch (io.op) {
      case ipc::Op::kFlush: log_.line("connection=%" PRIu64 " Flush id=%" PRIu64 " ...", c_, id); break;
      case ipc::Op::kWrite:
      case ipc::Op::kTrim:
        log_.line("connection=%" PRIu64 " %s id=%" PRIu64 " offset=0x%" PRIx64 " count=0x%x fua=%d ...", c_,
                  action(io.op), id, io.offset, io.count, fua);
        break;
      case ipc::Op::kZero:
        log_.line("connection=%" PRIu64 " Zero id=%" PRIu64 " offset=0x%" PRIx64 " count=0x%x trim=%d fua=%d fast=%d ...",
                  c_, id, io.offset, io.count, (io.flags & ipc::kFlagMayTrim) != 0, fua,
                  (io.flags & ipc::kFlagFastZero) != 0);
        break;
      case ipc::Op::kExtents:
        log_.line("connection=%" PRIu64 " Extents id=%" PRIu64 " offset=0x%" PRIx64 " count=0x%x req_one=%d ...", c_, id,
                  io.offset, io.count, (io.flags & ipc::kFlagReqOne) != 0);
        break;
      default:
        log_.line("connection=%" PRIu64 " %s id=%" PRIu64 " offset=0x%" PRIx64 " count=0x%x ...", c_, action(io.op), id,
                  io.offset, io.count);
    }
  }

  void done(const chain::Io& io, int error, uint32_t extents) override {
    uint64_t id = ids_[io.slot.tag];
    if (error != 0) {
      log_.line("connection=%" PRIu64 " ...%s id=%" PRIu64 " return=-1 error=%s", c_, action(io.op), id,
                error < 0 ? "ESHUTDOWN" : errnoName(error));
      return;
    }
    if (io.op != ipc::Op::kExtents) {
      log_.line("connection=%" PRIu64 " ...%s id=%" PRIu64 " return=0", c_, action(io.op), id);
      return;
    }
    // The extents, as (offset, length, "type") from the request's start.
    std::string list;
    const auto* e = reinterpret_cast<const ipc::ExtentEntry*>(io.slot.buf);
    uint64_t at = io.offset;
    for (uint32_t i = 0; i < extents && list.size() < 6000; ++i) {
      char one[96];
      const char* type = (e[i].type & 3) == 3 ? "hole,zero" : (e[i].type & 1) ? "hole" : (e[i].type & 2) ? "zero" : "";
      snprintf(one, sizeof one, "%s(0x%" PRIx64 ", 0x%" PRIx64 ", \"%s\")", i ? ", " : "", at,
               static_cast<uint64_t>(e[i].length), type);
      list += one;
      at += e[i].length;
    }
    log_.line("connection=%" PRIu64 " ...Extents id=%" PRIu64 " extents=(%s) return=0", c_, id, list.c_str());
  }

 private:
  LogFile& log_;
  const uint64_t c_;
  uint64_t next_ = 1;
  uint64_t ids_[ipc::kRingEntries] = {};
};

class Log final : public chain::Filter {
 public:
  explicit Log(int fd) : log_(fd) {}
  const char* name() const override { return "log"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string& exportName, bool) override {
    return kj::heap<chain::WatchingStage>(next, std::make_unique<Logger>(log_, ++connections_, exportName, next.info()));
  }
  chain::ExportList listExports(bool readonly, const std::function<chain::ExportList(bool)>& next) override {
    uint64_t id = ++lists_;
    log_.line("ListExports id=%" PRIu64 " readonly=%d tls=0 ...", id, readonly);
    try {
      chain::ExportList list = next(readonly);
      std::string names;
      for (const auto& e : list) names += (names.empty() ? "" : " ") + quoted(e.first);
      log_.line("...ListExports id=%" PRIu64 " exports=(%s) return=0", id, names.c_str());
      return list;
    } catch (...) {
      log_.line("...ListExports id=%" PRIu64 " return=-1", id);
      throw;
    }
  }
  void start(chain::ServerControl&) override { log_.line("Ready"); }

 private:
  LogFile log_;
  std::atomic<uint64_t> connections_{0}, lists_{0};
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string file;
  bool append = false;
  for (const auto& [key, value] : params) {
    if (key == "logfile") file = value;
    else if (key == "logappend") append = parseBool(key, value);
    else throw std::runtime_error("log: logscript= is not supported (logfile= is)");
  }
  if (file.empty()) throw std::runtime_error("log: logfile=FILE is required");
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (append ? 0 : O_TRUNC), 0644);
  if (fd < 0) throw std::runtime_error("log: logfile: '" + file + "': " + strerror(errno));
  return std::make_unique<Log>(fd);
}

}  // namespace nbdcage::filters::log
