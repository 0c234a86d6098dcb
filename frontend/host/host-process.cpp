#include "frontend/host/host-process.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace nbdcage::frontend {

namespace {

// Everything the child needs, prepared before clone3: between clone3 and
// execve the child may only make async-signal-safe calls.
struct ChildPlan {
  const char* path;
  std::vector<char*> argv;
  std::vector<char*> envp;
  const char* startDir;
  int controlFd, stderrFd, stdoutFd, stdinFd;
  std::vector<std::pair<int, int>> passFds;
  int parentPidfd;  // readable once the frontend is gone
  bool userNamespace;
  char uidMap[64], gidMap[64];
};

void writeFile(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) _exit(126);
  if (write(fd, text, strlen(text)) < 0) _exit(126);
  close(fd);
}

[[noreturn]] void runChild(const ChildPlan& p) {
  // First, before the fixed numbers below can overwrite one of them.
  for (const auto& [ours, theirs] : p.passFds)
    if (dup2(ours, theirs) < 0) _exit(126);
  int in = p.stdinFd >= 0 ? p.stdinFd : open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0 || dup2(in, STDIN_FILENO) < 0) _exit(126);
  if (p.controlFd >= 0 && dup2(p.controlFd, 3) < 0) _exit(126);
  if (dup2(p.stderrFd, STDERR_FILENO) < 0) _exit(126);
  // A plugin's printf never reaches a client.
  if (dup2(p.stdoutFd >= 0 ? p.stdoutFd : STDERR_FILENO, STDOUT_FILENO) < 0) _exit(126);
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // the host never outlives us
  struct pollfd alive = {p.parentPidfd, POLLIN, 0};
  if (poll(&alive, 1, 0) != 0) _exit(126);  // we died before PDEATHSIG was set
  // Its own process group (killAll), but not its own session: a new
  // session would also be a new scheduler autogroup, and the host would
  // compete with nbdcage for CPU instead of sharing with it.
  setpgid(0, 0);
  // Plugins and what they start get default signal dispositions and an
  // empty mask, whatever nbdcage ignores or blocks.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (chdir(p.startDir) < 0) _exit(126);
  if (p.userNamespace) {
    // Root inside, the caller outside: the host keeps the capabilities it
    // needs to build its sandbox across execve, and drops them there.  Our
    // /proc files belong to us only while we are dumpable, which nbdcage
    // is not; execve would make us so a moment later anyway.
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    writeFile("/proc/self/setgroups", "deny");
    writeFile("/proc/self/uid_map", p.uidMap);
    writeFile("/proc/self/gid_map", p.gidMap);
  }
  execve(p.path, p.argv.data(), p.envp.data());
  _exit(127);
}

pid_t cloneInto(unsigned long flags, int* pidfd) {
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uintptr_t>(pidfd);
  args.exit_signal = SIGCHLD;
  return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof args));
}

}  // namespace

HostProcess HostProcess::spawn(const Spec& spec) {
  std::vector<std::string> argStrings;
  argStrings.push_back(spec.path);
  argStrings.insert(argStrings.end(), spec.args.begin(), spec.args.end());
  ChildPlan plan{};
  plan.path = spec.path.c_str();
  for (auto& a : argStrings) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  plan.startDir = spec.startDir.c_str();
  plan.controlFd = spec.controlFd;
  plan.stderrFd = spec.stderrFd;
  kj::AutoCloseFd relayRead, relayWrite;
  if (spec.relayStderr) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) throw std::runtime_error(std::string("pipe2: ") + strerror(errno));
    relayRead = kj::AutoCloseFd(p[0]);
    relayWrite = kj::AutoCloseFd(p[1]);
    plan.stderrFd = p[1];
  }
  plan.stdoutFd = spec.stdoutFd;
  plan.stdinFd = spec.stdinFd;
  plan.passFds = spec.passFds;
  snprintf(plan.uidMap, sizeof plan.uidMap, "0 %u 1", static_cast<unsigned>(geteuid()));
  snprintf(plan.gidMap, sizeof plan.gidMap, "0 %u 1", static_cast<unsigned>(getegid()));
  int self = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  if (self < 0) throw std::runtime_error(std::string("pidfd_open: ") + strerror(errno));
  kj::AutoCloseFd selfFd(self);
  plan.parentPidfd = self;

  // The namespaces to ask for, then (if the kernel or its settings refuse)
  // none: the host's other layers do not depend on them.
  unsigned long wanted = 0;
  // NBDCAGE_SANDBOX_WITHOUT=namespaces: as on a kernel that refuses them
  // (for testing which layers hold without them).
  const char* without = getenv("NBDCAGE_SANDBOX_WITHOUT");
  if (spec.namespaces && !(without && strstr(without, "namespaces"))) {
    wanted = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
    if (!spec.network) wanted |= CLONE_NEWNET;
    if (geteuid() != 0) wanted |= CLONE_NEWUSER;
  }
  for (unsigned long flags : {wanted, 0ul}) {
    plan.userNamespace = (flags & CLONE_NEWUSER) != 0;
    // The host learns which namespaces it has from its environment.
    std::string told = std::string(kNamespacesVariable) + "=" + std::to_string(flags);
    plan.envp.clear();
    for (auto& e : spec.env) plan.envp.push_back(const_cast<char*>(e.c_str()));
    plan.envp.push_back(const_cast<char*>(told.c_str()));
    plan.envp.push_back(nullptr);
    int pidfd = -1;
    pid_t pid = cloneInto(flags, &pidfd);
    if (pid == 0) runChild(plan);
    if (pid > 0) {
      HostProcess host(pid, kj::AutoCloseFd(pidfd), flags);
      if (relayRead != nullptr) {
        relayWrite = nullptr;  // the host has its copy: EOF once it (and all it started) is gone
        host.lastLines_ = std::make_shared<lifecycle::LastLines>();
        try {
          host.relay_ = lifecycle::relayLines(kj::mv(relayRead), host.pidfd(), spec.limitRelay, host.lastLines_);
        } catch (const std::system_error& e) {
          throw std::runtime_error(std::string("no thread for its messages (") + e.what() + ")");  // ~host kills it
        }
      }
      return host;
    }
    int err = errno;
    bool refused = err == EPERM || err == EINVAL || err == ENOSPC || err == EUSERS || err == ENOSYS;
    if (flags == 0 || !refused) throw std::runtime_error(std::string("clone3: ") + strerror(err));
  }
  throw std::runtime_error("clone3 failed");
}

HostProcess::HostProcess(HostProcess&& o) noexcept
    : pid_(o.pid_),
      pidfd_(kj::mv(o.pidfd_)),
      namespaces_(o.namespaces_),
      reaped_(o.reaped_),
      status_(o.status_),
      relay_(std::move(o.relay_)),
      lastLines_(std::move(o.lastLines_)) {
  o.reaped_ = true;
}

HostProcess::~HostProcess() {
  if (!reaped_ && pidfd_.get() >= 0) {
    killAll();
    wait();
  }
  finishRelay();
}

void HostProcess::finishRelay() {
  if (reaped_ && relay_.joinable()) relay_.join();  // before: it would wait for the host's end
}

std::vector<std::string> HostProcess::lastWords() {
  if (!lastLines_) return {};
  finishRelay();
  return lastLines_->get();
}

bool HostProcess::running() const {
  if (reaped_) return false;
  siginfo_t info;
  memset(&info, 0, sizeof info);
  if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG | WNOWAIT) < 0)
    return false;
  return info.si_pid == 0;
}

int HostProcess::wait() {
  if (reaped_) return status_;
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int r;
  do {
    r = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED);
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  if (r < 0) return status_ = 0;
  // waitpid(2)'s encoding, so WIFSIGNALED and friends apply.
  if (info.si_code == CLD_EXITED) status_ = (info.si_status & 0xff) << 8;
  else status_ = (info.si_status & 0x7f) | (info.si_code == CLD_DUMPED ? 0x80 : 0);
  // In a PID namespace the host runs under its namespace's reaper, which
  // ends with 128+N when signal N ended the host.
  int code = WIFEXITED(status_) ? WEXITSTATUS(status_) : 0;
  if ((namespaces_ & CLONE_NEWPID) && code > 128 && code < 128 + NSIG) status_ = code - 128;
  return status_;
}

void HostProcess::kill(int sig) const {
  if (!reaped_) syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0);
}

void HostProcess::killAll() const {
  kill(SIGKILL);
  ::kill(-pid_, SIGKILL);  // also after wait(): what the plugin left running
}

}  // namespace nbdcage::frontend
