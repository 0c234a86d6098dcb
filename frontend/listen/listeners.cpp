#include "frontend/listen/listeners.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace nbdcage::listen {

PrivateSocketDir::PrivateSocketDir() {
  char tmpl[] = "/tmp/nbdcageXXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw ListenError(std::string("-U -: mkdtemp: ") + strerror(errno));
  dir_ = tmpl;  // mkdtemp makes it 0700
  socket_ = dir_ + "/socket";
}

PrivateSocketDir::~PrivateSocketDir() {
  unlink(socket_.c_str());
  rmdir(dir_.c_str());
}

Listener listenUnix(const std::string& path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    throw ListenError("-U: path too long: " + std::to_string(path.size()) + " bytes, the maximum is " +
                      std::to_string(sizeof addr.sun_path - 1));
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw ListenError(std::string("socket: ") + strerror(errno));
  kj::AutoCloseFd owned(fd);
  // Bind a temporary name, listen, then link the real name into place: a
  // client that sees the socket file can connect at once (no window in
  // which connect() is refused), and an existing file is never replaced.
  std::string tmp = path + ".nbdcage-" + std::to_string(getpid());
  if (tmp.size() >= sizeof addr.sun_path) tmp = path;  // no room: plain bind
  memcpy(addr.sun_path, tmp.c_str(), tmp.size() + 1);
  unlink(tmp.c_str());
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0)
    throw ListenError(path + ": " + strerror(errno));
  if (::listen(fd, SOMAXCONN) < 0) {
    int err = errno;
    unlink(tmp.c_str());
    throw ListenError(path + ": listen: " + strerror(err));
  }
  if (tmp != path) {
    int rc = link(tmp.c_str(), path.c_str());
    int err = errno;
    unlink(tmp.c_str());
    if (rc < 0)
      throw ListenError(path + ": " + strerror(err) +
                        (err == EEXIST ? " (is another server using it? remove the file if not)" : ""));
  }
  return Listener{kj::mv(owned), false};
}

std::vector<Listener> listenTcp(const std::optional<std::string>& ipaddr, const std::string& port, int family) {
  struct addrinfo hints = {};
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  bool numeric = !port.empty() && port.find_first_not_of("0123456789") == std::string::npos;
  if (!numeric) hints.ai_flags &= ~AI_NUMERICSERV;
  struct addrinfo* list = nullptr;
  int rc = getaddrinfo(ipaddr ? ipaddr->c_str() : nullptr, port.c_str(), &hints, &list);
  if (rc != 0) throw ListenError((ipaddr ? *ipaddr : std::string("*")) + ":" + port + ": " + gai_strerror(rc));
  std::vector<Listener> out;
  std::string lastError;
  for (auto* ai = list; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      if (errno != EAFNOSUPPORT) lastError = strerror(errno);
      continue;  // e.g. IPv6 disabled in this kernel
    }
    kj::AutoCloseFd owned(fd);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || ::listen(fd, SOMAXCONN) < 0) {
      lastError = strerror(errno);
      continue;
    }
    out.push_back(Listener{kj::mv(owned), true});
  }
  freeaddrinfo(list);
  if (out.empty() && lastError.empty())
    throw ListenError(std::string("cannot listen on port ") + port + ": this kernel has no " +
                      (family == AF_INET6 ? "IPv6" : "IPv4"));
  if (out.empty()) throw ListenError("cannot listen on port " + port + ": " + lastError);
  return out;
}

Listener listenVsock(uint32_t port) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    if (errno == EAFNOSUPPORT)
      throw ListenError("--vsock: this kernel does not support AF_VSOCK (is the vsock module loaded?)");
    throw ListenError(std::string("--vsock: socket: ") + strerror(errno));
  }
  kj::AutoCloseFd owned(fd);
  struct sockaddr_vm addr = {};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_ANY;
  addr.svm_port = port;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0 || ::listen(fd, SOMAXCONN) < 0)
    throw ListenError("--vsock: port " + std::to_string(port) + ": " + strerror(errno));
  return Listener{kj::mv(owned), false};
}

}  // namespace nbdcage::listen
