// One plugin host process: spawned straight into namespaces of its own,
// watched through a pidfd, reaped exactly once.  It knows nothing of RPC
// (that is the Supervisor's) and nothing of plugins.
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

#include <string>
#include <vector>

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
    int stderrFd = 2;               // becomes fd 2
    int stdoutFd = -1;              // becomes fd 1 (-1: the same as stderr)
    bool namespaces = true;         // false: the machine's (--no-sandbox)
    bool network = false;           // keep the machine's network namespace
  };

  // Throws std::runtime_error when no process can be made.
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

 private:
  HostProcess(pid_t pid, kj::AutoCloseFd pidfd, unsigned long ns) : pid_(pid), pidfd_(kj::mv(pidfd)), namespaces_(ns) {}
  pid_t pid_;
  kj::AutoCloseFd pidfd_;
  unsigned long namespaces_;
  bool reaped_ = false;
  int status_ = 0;
};

}  // namespace nbdcage::frontend
