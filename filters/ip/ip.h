// ip: allow or deny clients by who they are, before the greeting, with
// nbdkit's rules: allow= and deny= lists (addresses, CIDR ranges, anyipv4,
// anyipv6, anyunix, anyvsock, all/any, and for Unix sockets uid:, gid:,
// pid:; for vsock vsock-cid:, vsock-port:).  A client the allow list
// matches is let in; else one the deny list matches is refused; else it is
// let in, except one whose kind of socket nbdcage cannot tell (a pipe),
// which only all/any in allow= lets in.  See nbdcage-ip-filter(1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::ip {

// One rule of a list, parsed.
struct Rule {
  enum class Kind { kAny, kAnyV4, kAnyV6, kAnyUnix, kAnyVsock, kV4, kV6, kUid, kGid, kPid, kVsockCid, kVsockPort };
  Kind kind;
  uint8_t addr[16] = {};  // kV4 (first 4 bytes), kV6
  unsigned prefix = 0;    // bits of addr that must match
  int64_t number = 0;     // uid, gid, pid, cid, port
  std::string text;       // as written, for messages
};

// "127.0.0.1,::1,uid:0" -> rules; throws std::runtime_error naming the
// rule it cannot read.
std::vector<Rule> parseRules(const std::string& list);
// Whether `rule` matches the client.
bool matches(const Rule& rule, const chain::Client& client);
// The client's address as text ("127.0.0.1", "[::1]", "unix pid 12 uid 0 gid 0", ...).
std::string describe(const chain::Client& client);

inline bool takesKey(const std::string& key) { return key == "allow" || key == "deny"; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::ip
