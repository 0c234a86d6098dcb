// One plugin host process: spawned straight into namespaces of its own,
// watched through a pidfd, reaped exactly once, its stderr relayed into
// ours.  It knows nothing of RPC (that is HostClient's), of restarts (the
// Supervisor's) or of plugins.
//
//   frontend                          clone3(CLONE_PIDFD | CLONE_NEW*)
//   --------                          ------------------------------------
//   spawn(spec) ----------------------> child: [user ns maps] -> fds 0-3
//   pidfd  <-- readable when it ends      -> PDEATHSIG -> own process group
//   wait() --- waitid(P_PIDFD) --------   -> default signals -> execve(host)
//
// In a new PID namespace the host is its namespace's init: whatever the
// plugin starts (even in a session of its own) dies with it, and nothing
// outside the namespace is visible to it.  Namespaces the kernel refuses
// are dropped one step at a time (logged once); the host's other layers
// (Landlock, capabilities, seccomp) stand without them.
#pragma once

#include <sys/types.h>

#include <kj/io.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "frontend/lifecycle/log.h"

namespace nbdcage::frontend {

class HostProcess {
 public:
  // Set in the host's environment: the CLONE_NEW* flags it was given.
  static constexpr const char* kNamespacesVariable = "NBDCAGE_HOST_NAMESPACES";

  struct Spec {
    std::string path;
    std::vector<std::string> args;  // without argv[0]
    std::vector<std::string> env;   // NAME=VALUE, complete
    std::string startDir;
    int controlFd = -1;             // becomes fd 3 (none if -1)
    int stderrFd = 2;               // becomes fd 2, unless relayed
    // Relay its stderr, line by line, into ours (a thread of its own; at
    // most 1000 lines a second if `limitRelay`), keeping its last lines.
    bool relayStderr = false;
    bool limitRelay = true;
    int stdoutFd = -1;              // becomes fd 1 (-1: the same as stderr)
    int stdinFd = -1;               // becomes fd 0 (-1: /dev/null)
    std::vector<std::pair<int, int>> passFds;  // (ours, the child's number): given as they are
    bool namespaces = true;         // false: the machine's (--no-sandbox)
    bool network = false;           // keep the machine's network namespace
  };

  // Throws std::runtime_error when no process (or no relay thread) can be
  // made.
  static HostProcess spawn(const Spec& spec);

  HostProcess(HostProcess&&) noexcept;
  HostProcess& operator=(HostProcess&&) = delete;
  ~HostProcess();  // kills and reaps a host still running

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  // The namespaces it got (CLONE_NEW* flags; 0 for none).
  unsigned long namespaces() const { return namespaces_; }
  bool running() const;
  // Reaps it (waits if needed); a waitpid(2)-style status.  Idempotent.
  int wait();
  void kill(int sig) const;
  // SIGKILL to it and its process group (what the plugin started).
  void killAll() const;
  // Its last lines on stderr (relayed only).  Once it has been reaped, all
  // of them: this waits for the relay to pass on what was left.
  std::vector<std::string> lastWords();
  // Once it has been reaped: waits until the relay has passed on its last
  // lines (so that they come before what we say about its end).
  void finishRelay();

 private:
  HostProcess(pid_t pid, kj::AutoCloseFd pidfd, unsigned long ns) : pid_(pid), pidfd_(kj::mv(pidfd)), namespaces_(ns) {}
  pid_t pid_;
  kj::AutoCloseFd pidfd_;
  unsigned long namespaces_;
  bool reaped_ = false;
  int status_ = 0;
  std::thread relay_;  // ends once the host (and its stderr) is gone
  std::shared_ptr<lifecycle::LastLines> lastLines_;
};

}  // namespace nbdcage::frontend
