#include "filters/exitwhen/events.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/extend.hpp>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace bp = boost::process;

namespace nbdcage::filters::exitwhen {

namespace {

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

// A decimal number in [min, max], or nothing.
bool parseNumber(const std::string& s, long long min, long long max, long long& out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18) return false;
  out = std::stoll(s);
  return out >= min && out <= max;
}

class FileCreated final : public Event {
 public:
  explicit FileCreated(std::string path) : path_(std::move(path)) {}
  bool happened() override { return access(path_.c_str(), R_OK) == 0; }

 private:
  std::string path_;
};

class FileDeleted final : public Event {
 public:
  explicit FileDeleted(std::string path) : path_(std::move(path)) {}
  bool happened() override {
    if (access(path_.c_str(), F_OK) == 0) return false;
    if (errno == ENOENT || errno == ENOTDIR) return true;
    fprintf(stderr, "nbdcage: exitwhen: exit-when-file-deleted: %s: %s\n", path_.c_str(), strerror(errno));
    return false;
  }

 private:
  std::string path_;
};

class PipeClosed final : public Event {
 public:
  explicit PipeClosed(int fd) : fd_(fd) {}
  bool happened() override {
    // events = 0: only hang-ups and errors, and nothing is read.
    struct pollfd p = {fd_, 0, 0};
    if (poll(&p, 1, 0) < 0) return false;
    if (p.revents & POLLNVAL) {
      fprintf(stderr, "nbdcage: exitwhen: exit-when-pipe-closed: %d is not an open file descriptor\n", fd_);
      return true;
    }
    return (p.revents & (POLLHUP | POLLERR)) != 0;
  }

 private:
  int fd_;
};

class ProcessExits final : public Event {
 public:
  explicit ProcessExits(kj::AutoCloseFd pidfd) : pidfd_(kj::mv(pidfd)) {}
  bool happened() override {
    struct pollfd p = {pidfd_.get(), POLLIN, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP)) != 0;
  }

 private:
  kj::AutoCloseFd pidfd_;
};

class Script final : public Event {
 public:
  explicit Script(std::string command) : command_(std::move(command)) {}
  bool happened() override {
    // A clean signal mask (ours blocks the signals the event loop takes),
    // stdin from /dev/null, stdout to our stderr: with -s our stdout is
    // the NBD stream.
    auto setup = [](auto&) {
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      int null = open("/dev/null", O_RDONLY);
      if (null >= 0 && null != STDIN_FILENO) {
        dup2(null, STDIN_FILENO);
        close(null);
      }
      dup2(STDERR_FILENO, STDOUT_FILENO);
    };
    int status;
    try {
      bp::child child("/bin/sh", bp::args({std::string("-c"), command_}), bp::extend::on_exec_setup = setup);
      child.wait();
      status = child.native_exit_code();
    } catch (const std::exception& e) {
      fprintf(stderr, "nbdcage: exitwhen: exit-when-script: cannot run /bin/sh: %s\n", e.what());
      return false;
    }
    std::string message;
    ScriptResult r = classifyScript(status, message);
    if (r == ScriptResult::kError) fprintf(stderr, "nbdcage: exitwhen: exit-when-script: %s\n", message.c_str());
    return r == ScriptResult::kEvent;
  }

 private:
  std::string command_;
};

}  // namespace

std::unique_ptr<Event> fileCreated(const std::string& file) {
  if (file.empty()) fail("exit-when-file-created: the file name is empty");
  return std::make_unique<FileCreated>(std::filesystem::absolute(file).string());
}

std::unique_ptr<Event> fileDeleted(const std::string& file) {
  if (file.empty()) fail("exit-when-file-deleted: the file name is empty");
  return std::make_unique<FileDeleted>(std::filesystem::absolute(file).string());
}

std::unique_ptr<Event> pipeClosed(const std::string& value) {
  long long fd;
  if (!parseNumber(value, 0, INT_MAX, fd)) fail("exit-when-pipe-closed: '" + value + "' is not a file descriptor number");
  int flags = fcntl(static_cast<int>(fd), F_GETFD);
  if (flags >= 0) fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
  return std::make_unique<PipeClosed>(static_cast<int>(fd));
}

std::unique_ptr<Event> processExits(const std::string& value) {
  long long pid;
  if (!parseNumber(value, 1, INT_MAX, pid)) fail("exit-when-process-exits: '" + value + "' is not a process ID");
  int fd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (fd < 0) fail("exit-when-process-exits: process " + value + ": " + strerror(errno));
  return std::make_unique<ProcessExits>(kj::AutoCloseFd(fd));
}

std::unique_ptr<Event> script(const std::string& command) {
  if (command.empty()) fail("exit-when-script: the command is empty");
  return std::make_unique<Script>(command);
}

ScriptResult classifyScript(int status, std::string& message) {
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    if (code == 0) return ScriptResult::kNothing;
    if (code == 88) return ScriptResult::kEvent;
    message = "the command failed with exit code " + std::to_string(code) +
              (code > 88 ? " (codes above 88 are reserved)" : "");
    return ScriptResult::kError;
  }
  if (WIFSIGNALED(status)) {
    message = "the command was killed by signal " + std::to_string(WTERMSIG(status));
    return ScriptResult::kError;
  }
  message = "the command stopped (wait status " + std::to_string(status) + ")";
  return ScriptResult::kError;
}

unsigned parsePollSeconds(const std::string& value) {
  long long secs;
  if (!parseNumber(value, 1, 86400, secs))
    fail("exit-when-poll: '" + value + "' is not a number of seconds from 1 to 86400");
  return static_cast<unsigned>(secs);
}

}  // namespace nbdcage::filters::exitwhen
