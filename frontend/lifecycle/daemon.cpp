#include "frontend/lifecycle/daemon.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace nbdcage::lifecycle {

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
    // Parent: wait for the verdict.  No byte at all means the child died.
    close(fds[1]);
    unsigned char status = 1;
    ssize_t n;
    do {
      n = read(fds[0], &status, 1);
    } while (n < 0 && errno == EINTR);
    _exit(n == 1 ? status : 1);
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
