// Going into the background (no -f): the process forks before it starts
// anything; the parent waits until the child says it is serving (then
// exits 0, so a script can connect at once) or ended early (then exits with
// the child's status: a failure's, after the child printed why, or 0).
#pragma once

#include <string>

namespace nbdcage::lifecycle {

class Daemon {
 public:
  // Forks.  Returns in the child only; the parent exits in here.
  static Daemon start();

  // Child: the server accepts connections.  Releases the parent, detaches
  // from the terminal (stdin/stdout to /dev/null) and leaves the directory.
  void ready();
  // Child: it stops before serving (startup failed, or an exitwhen event
  // had already happened); the parent exits with `status`.  Nothing once
  // ready() ran.
  void endedEarly(int status);

 private:
  explicit Daemon(int fd) : fd_(fd) {}
  int fd_;  // write end of the pipe to the waiting parent, or -1
};

// Ends the process by `sig`'s default action (so the caller's shell sees
// 128 + sig), whatever this process blocked or handled.
[[noreturn]] void dieOfSignal(int sig);

// Writes `pid` to `path` atomically (a temporary file, then rename).
// Returns false (after printing why) on failure.
bool writePidfile(const std::string& path, int pid);

}  // namespace nbdcage::lifecycle
