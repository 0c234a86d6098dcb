#include "frontend/lifecycle/daemon.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace nbdcage::lifecycle {

namespace {

// The parent: waits for the verdict, then exits with it.  No byte at all
// means the child died.  A stopping signal (blocked here, as in the
// child) goes to the child, which is still starting; the parent then dies
// of it once the child has answered, so the caller sees the signal.
[[noreturn]] void waitForVerdict(int verdict, pid_t child) {
  sigset_t stopping;
  sigemptyset(&stopping);
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP}) sigaddset(&stopping, sig);
  int signals = signalfd(-1, &stopping, SFD_CLOEXEC);
  int got = 0;
  for (;;) {
    struct pollfd fds[2] = {{verdict, POLLIN, 0}, {signals, POLLIN, 0}};
    if (poll(fds, signals < 0 ? 1 : 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    struct signalfd_siginfo info;
    if ((fds[1].revents & POLLIN) && read(signals, &info, sizeof info) == sizeof info) {
      got = static_cast<int>(info.ssi_signo);
      kill(child, got);
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) break;
  }
  unsigned char status = 1;
  ssize_t n;
  do {
    n = read(verdict, &status, 1);
  } while (n < 0 && errno == EINTR);
  if (got != 0) dieOfSignal(got);
  _exit(n == 1 ? status : 1);
}

}  // namespace

void dieOfSignal(int sig) {
  fflush(stderr);
  signal(sig, SIG_DFL);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, sig);
  sigprocmask(SIG_UNBLOCK, &only, nullptr);
  raise(sig);
  _exit(128 + sig);
}

Daemon Daemon::start() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    perror("nbdcage: pipe");
    exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("nbdcage: fork");
    exit(1);
  }
  if (pid > 0) {
    close(fds[1]);
    waitForVerdict(fds[0], pid);
  }
  close(fds[0]);
  setsid();  // no controlling terminal; not in the caller's process group
  return Daemon(fds[1]);
}

void Daemon::ready() {
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    close(null);
  }
  if (chdir("/") < 0) {
    // Not fatal: only a held mount point would be the cost.
  }
  unsigned char ok = 0;
  (void)!write(fd_, &ok, 1);
  close(fd_);
  fd_ = -1;
}

void Daemon::endedEarly(int status) {
  if (fd_ < 0) return;  // ready() released the parent already
  unsigned char s = static_cast<unsigned char>(status);
  (void)!write(fd_, &s, 1);
  close(fd_);
  fd_ = -1;
}

bool writePidfile(const std::string& path, int pid) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* f = fopen(tmp.c_str(), "we");
  if (f == nullptr) {
    fprintf(stderr, "nbdcage: -P %s: %s\n", path.c_str(), strerror(errno));
    return false;
  }
  fprintf(f, "%d\n", pid);
  bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) < 0) {
    fprintf(stderr, "nbdcage: -P %s: %s\n", path.c_str(), strerror(errno));
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace nbdcage::lifecycle
