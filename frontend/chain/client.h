// Who is at the other end of a connection, as the kernel says: what a
// plugin's nbdkit_peer_name / _pid / _uid / _gid answer.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace nbdcage::chain {

struct Client {
  std::vector<uint8_t> address;  // the peer's struct sockaddr; empty if unknown (a pipe)
  struct Credentials {
    int64_t pid, uid, gid;
  };
  std::optional<Credentials> credentials;  // Unix sockets (SO_PEERCRED)
  // The connection's input descriptor (never sent to a plugin): a wait on
  // the client's behalf ends if it hangs up.  -1: none.
  int fd = -1;

  // Asks the kernel about the socket `fd` (anything else: unknown).
  static Client of(int fd);
};

}  // namespace nbdcage::chain
