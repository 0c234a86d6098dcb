// Listening sockets: Unix (-U PATH, -U -) and TCP (-p, -i).  Every socket
// is close-on-exec and non-blocking from birth.
#pragma once

#include <kj/io.h>

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace nbdcage::listen {

class ListenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Listener {
  kj::AutoCloseFd fd;
  bool tcp = false;
};

// A private directory (mode 0700) holding a socket for `-U -`; removed,
// socket and all, when this object goes.
class PrivateSocketDir {
 public:
  PrivateSocketDir();
  ~PrivateSocketDir();
  PrivateSocketDir(const PrivateSocketDir&) = delete;
  PrivateSocketDir& operator=(const PrivateSocketDir&) = delete;
  const std::string& socketPath() const { return socket_; }

 private:
  std::string dir_;
  std::string socket_;
};

// Binds and listens on `path`.  Throws ListenError naming the path.
Listener listenUnix(const std::string& path);

// Binds every address `ipaddr` (or the wildcard) resolves to, on `port`.
// Throws ListenError if none could be bound.
// `family`: AF_UNSPEC (both), AF_INET or AF_INET6 only (-4, -6); it also
// decides how a host name in `ipaddr` resolves.
std::vector<Listener> listenTcp(const std::optional<std::string>& ipaddr, const std::string& port,
                                int family = AF_UNSPEC);

// Listens on AF_VSOCK, any CID, `port`.  Throws ListenError, clearly when
// the kernel has no vsock support.
Listener listenVsock(uint32_t port);

}  // namespace nbdcage::listen
