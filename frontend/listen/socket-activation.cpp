#include "frontend/listen/socket-activation.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace nbdcage::listen {

namespace {
constexpr int kMaxSockets = 16;  // as nbdkit: an unbounded LISTEN_FDS is refused
}

bool socketActivated() {
  const char* pid = getenv("LISTEN_PID");
  const char* fds = getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr) return false;
  char* end;
  long p = strtol(pid, &end, 10);
  if (*end != '\0' || p != getpid()) {
    fprintf(stderr, "nbdcage: LISTEN_PID=%s is not this process (%d): ignoring socket activation\n", pid, getpid());
    return false;
  }
  return true;
}

std::vector<Listener> takeActivatedSockets() {
  char** names = nullptr;
  int n = sd_listen_fds_with_names(1, &names);  // 1: unset LISTEN_* for children
  if (names != nullptr) {
    for (char** p = names; *p; ++p) free(*p);
    free(names);
  }
  if (n < 0) throw ListenError(std::string("socket activation: ") + strerror(-n));
  if (n == 0) throw ListenError("socket activation: LISTEN_FDS passed no socket");
  if (n > kMaxSockets)
    throw ListenError("socket activation: LISTEN_FDS=" + std::to_string(n) + " is more than the " +
                      std::to_string(kMaxSockets) + " sockets nbdcage accepts");
  std::vector<Listener> out;
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
      throw ListenError("socket activation: fd " + std::to_string(fd) + " is not a listening stream socket");
    int flags = fcntl(fd, F_GETFD);
    fcntl(fd, F_SETFD, flags | FD_CLOEXEC);  // keep the other descriptor flags
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    bool tcp = sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0;
    out.push_back(Listener{kj::AutoCloseFd(fd), tcp});
  }
  return out;
}

}  // namespace nbdcage::listen
