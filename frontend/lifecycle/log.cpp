#include "frontend/lifecycle/log.h"

#include <fcntl.h>
#include <poll.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace nbdcage::lifecycle {

namespace {

// Splits what arrives on `fd` into lines and hands each to `emit`.
class LineReader {
 public:
  template <typename Emit>
  bool pump(int fd, Emit&& emit) {  // false at EOF or error
    ssize_t n = read(fd, buf_ + used_, sizeof buf_ - used_);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      if (used_ > 0) emit(std::string(buf_, used_));
      used_ = 0;
      return false;
    }
    used_ += static_cast<size_t>(n);
    size_t start = 0;
    for (size_t i = 0; i < used_; ++i) {
      if (buf_[i] != '\n') continue;
      emit(std::string(buf_ + start, i - start));
      start = i + 1;
    }
    if (start == 0 && used_ == sizeof buf_) {  // an over-long line: pass it on in pieces
      emit(std::string(buf_, used_));
      start = used_;
    }
    std::memmove(buf_, buf_ + start, used_ - start);
    used_ -= start;
    return true;
  }

 private:
  char buf_[4096];
  size_t used_ = 0;
};

void writeLine(int fd, const std::string& line) {
  std::string l = line + "\n";
  (void)!write(fd, l.data(), l.size());
}

}  // namespace

bool parseLogTo(const std::string& s, LogTarget& out) {
  if (s == "stderr") out.to = LogTo::kStderr;
  else if (s == "syslog") out.to = LogTo::kSyslog;
  else if (s == "null") out.to = LogTo::kNull;
  else if (s.starts_with("file:") && s.size() > 5) {
    out.to = LogTo::kFile;
    out.file = s.substr(5);
  } else return false;
  return true;
}

namespace {

// "nbdcage: ..." and "nbdcage-pluginhost: ..." as --name calls them.
std::string renamed(const std::string& line, const std::string& name) {
  if (name == "nbdcage" || !line.starts_with("nbdcage")) return line;
  bool ours = line.starts_with("nbdcage: ") || line.starts_with("nbdcage-pluginhost: ");
  return ours ? name + line.substr(7) : line;
}

}  // namespace

int openLogFile(const std::string& path) {
  return open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
}

bool redirectLog(const LogTarget& target, bool verbose) {
  if (target.to == LogTo::kStderr && target.name == "nbdcage") return true;
  int file = -1;
  if (target.to == LogTo::kFile && (file = openLogFile(target.file)) < 0) {
    fprintf(stderr, "%s: --log=%s: %s\n", target.name.c_str(), target.file.c_str(), strerror(errno));
    return false;
  }
  int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  int p[2];
  if (saved < 0 || pipe2(p, O_CLOEXEC) < 0) return true;  // keep stderr: better than losing messages
  dup2(p[1], STDERR_FILENO);
  close(p[1]);
  if (target.to == LogTo::kSyslog) {
    static std::string ident;  // openlog keeps the pointer
    ident = target.name;
    openlog(ident.c_str(), LOG_PID, LOG_DAEMON);
  }
  std::thread([target, verbose, saved, file, in = p[0]] {
    LineReader reader;
    auto emit = [&](const std::string& raw) {
      std::string line = renamed(raw, target.name);
      bool debug = line.find(": debug: ") != std::string::npos;
      if (debug && target.to != LogTo::kFile) {
        if (verbose) writeLine(saved, line);
      } else if (target.to == LogTo::kStderr) {
        writeLine(saved, line);
      } else if (target.to == LogTo::kSyslog) {
        syslog(LOG_ERR, "%s", line.c_str());
      } else if (target.to == LogTo::kFile) {
        writeLine(file, line);
      }
    };
    while (reader.pump(in, emit)) {
    }
  }).detach();  // lives as long as the process
  return true;
}

namespace {

// A token bucket of lines: a plugin that floods its stderr cannot fill the
// log (or the disk under it), and what it loses is said in one line.
class LineBudget {
 public:
  static constexpr double kPerSecond = 1000, kBurst = 5000;
  bool take() {
    auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(kBurst, tokens_ + std::chrono::duration<double>(now - last_).count() * kPerSecond);
    last_ = now;
    if (tokens_ < 1) {
      ++dropped_;
      return false;
    }
    tokens_ -= 1;
    return true;
  }
  // Says how many lines went missing, if any, since it last said so.
  void reportDropped() {
    if (dropped_ == 0) return;
    writeLine(STDERR_FILENO, "nbdcage: plugin host: " + std::to_string(dropped_) +
                                 " lines of its output dropped (more than 1000 a second)");
    dropped_ = 0;
  }

 private:
  double tokens_ = kBurst;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  uint64_t dropped_ = 0;
};

// The relay thread's body: owns `fd` and `dead`, closes both at the end.
void relayLoop(int fd, int dead, bool limited, std::shared_ptr<LastLines> last) {
  LineReader reader;
  LineBudget budget;
  auto emit = [&](const std::string& line) {
    if (last) last->add(line);
    if (limited && !budget.take()) return;
    budget.reportDropped();
    writeLine(STDERR_FILENO, line);
  };
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  for (;;) {
    struct pollfd fds[2] = {{fd, POLLIN, 0}, {dead, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents && !reader.pump(fd, emit)) break;
    if (fds[1].revents) {
      // The host is gone; its children may still hold the pipe open, so
      // take what is there now and stop.
      for (int i = 0; i < 1024; ++i) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0 || !reader.pump(fd, emit)) break;
      }
      break;
    }
  }
  budget.reportDropped();
  close(fd);
  close(dead);
}

}  // namespace

void LastLines::add(const std::string& line) {
  std::lock_guard guard(lock_);
  lines_.push_back(line.substr(0, 1000));
  if (lines_.size() > kKeep) lines_.pop_front();
}

std::vector<std::string> LastLines::get() const {
  std::lock_guard guard(lock_);
  return {lines_.begin(), lines_.end()};
}

std::thread relayLines(kj::AutoCloseFd fd, int pidfd, bool limited, std::shared_ptr<LastLines> last) {
  int dead = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
  std::thread relay;
  try {
    relay = std::thread(relayLoop, fd.get(), dead, limited, std::move(last));
  } catch (const std::system_error&) {  // no thread: the caller says so (fd closes with its owner)
    close(dead);
    throw;
  }
  fd.release();  // the thread owns it now
  return relay;
}

}  // namespace nbdcage::lifecycle
