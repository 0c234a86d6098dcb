#include "filters/ip/ip.h"

#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace nbdcage::filters::ip {

namespace {

int64_t number(const std::string& text, const std::string& rule) {
  char* end;
  errno = 0;
  long long v = text.empty() ? -1 : strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || *end != '\0' || v < 0)
    throw std::runtime_error("'" + rule + "': a number was expected after ':'");
  return v;
}

// The client's family and, for IP, its address (an IPv4-mapped IPv6
// address counts as the IPv4 one).
int family(const chain::Client& c, uint8_t addr[16]) {
  if (c.address.size() < sizeof(sa_family_t)) return AF_UNSPEC;
  sa_family_t f;
  memcpy(&f, c.address.data(), sizeof f);
  if (f == AF_INET && c.address.size() >= sizeof(sockaddr_in)) {
    sockaddr_in in;
    memcpy(&in, c.address.data(), sizeof in);
    memcpy(addr, &in.sin_addr, 4);
    return AF_INET;
  }
  if (f == AF_INET6 && c.address.size() >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6;
    memcpy(&in6, c.address.data(), sizeof in6);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      memcpy(addr, in6.sin6_addr.s6_addr + 12, 4);
      return AF_INET;
    }
    memcpy(addr, in6.sin6_addr.s6_addr, 16);
    return AF_INET6;
  }
  return f == AF_UNIX || f == AF_VSOCK ? f : AF_UNSPEC;
}

bool prefixMatches(const uint8_t* a, const uint8_t* b, unsigned bits) {
  unsigned whole = bits / 8, rest = bits % 8;
  if (memcmp(a, b, whole) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

class IpFilter final : public chain::Filter {
 public:
  IpFilter(std::vector<Rule> allow, std::vector<Rule> deny) : allow_(std::move(allow)), deny_(std::move(deny)) {}
  const char* name() const override { return "ip"; }

  bool preconnect(const chain::Client& client) override {
    if (allow_.empty() && deny_.empty()) return true;  // as nbdkit: no lists, no filtering
    for (const auto& r : allow_)
      if (matches(r, client)) return true;
    uint8_t addr[16];
    bool unknown = family(client, addr) == AF_UNSPEC;
    for (const auto& r : deny_)
      if (matches(r, client) || unknown) {
        fprintf(stderr, "nbdcage: ip: client %s refused (deny=%s)\n", describe(client).c_str(),
                unknown ? "(a kind of socket nbdcage cannot tell)" : r.text.c_str());
        return false;
      }
    if (unknown) {
      fprintf(stderr, "nbdcage: ip: client %s refused: nbdcage cannot tell what kind of socket it is on\n",
              describe(client).c_str());
      return false;
    }
    return true;
  }

 private:
  const std::vector<Rule> allow_, deny_;
};

}  // namespace

std::vector<Rule> parseRules(const std::string& list) {
  std::vector<Rule> rules;
  size_t at = 0;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    std::string t = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? list.size() + 1 : comma + 1;
    if (t.empty()) throw std::runtime_error("an empty rule in '" + list + "'");
    Rule r;
    r.text = t;
    auto colon = t.find(':');
    std::string head = t.substr(0, colon), tail = colon == std::string::npos ? "" : t.substr(colon + 1);
    if (t == "all" || t == "any") r.kind = Rule::Kind::kAny;
    else if (t == "allipv4" || t == "anyipv4") r.kind = Rule::Kind::kAnyV4;
    else if (t == "allipv6" || t == "anyipv6") r.kind = Rule::Kind::kAnyV6;
    else if (t == "allunix" || t == "anyunix") r.kind = Rule::Kind::kAnyUnix;
    else if (t == "allvsock" || t == "anyvsock") r.kind = Rule::Kind::kAnyVsock;
    else if (head == "uid") r.kind = Rule::Kind::kUid, r.number = number(tail, t);
    else if (head == "gid") r.kind = Rule::Kind::kGid, r.number = number(tail, t);
    else if (head == "pid") r.kind = Rule::Kind::kPid, r.number = number(tail, t);
    else if (head == "vsock-cid") r.kind = Rule::Kind::kVsockCid, r.number = number(tail, t);
    else if (head == "vsock-port") r.kind = Rule::Kind::kVsockPort, r.number = number(tail, t);
    else if (head == "dn" || head == "issuer-dn")
      throw std::runtime_error("'" + t + "': a certificate's DN needs TLS, which nbdcage does not serve yet");
    else if (head == "security")
      throw std::runtime_error("'" + t + "': nbdcage does not read clients' security labels");
    else {
      auto slash = t.find('/');
      std::string addr = t.substr(0, slash);
      bool v6 = addr.find(':') != std::string::npos;
      if (inet_pton(v6 ? AF_INET6 : AF_INET, addr.c_str(), r.addr) != 1)
        throw std::runtime_error("'" + t + "' is not an address, a range or a rule nbdcage knows");
      r.kind = v6 ? Rule::Kind::kV6 : Rule::Kind::kV4;
      unsigned max = v6 ? 128 : 32;
      r.prefix = max;
      if (slash != std::string::npos) {
        int64_t bits = number(t.substr(slash + 1), t);
        if (bits > max) throw std::runtime_error("'" + t + "': the prefix is longer than the address");
        r.prefix = static_cast<unsigned>(bits);
      }
    }
    rules.push_back(r);
  }
  return rules;
}

bool matches(const Rule& r, const chain::Client& c) {
  uint8_t addr[16] = {};
  int f = family(c, addr);
  auto cred = [&](int64_t chain::Client::Credentials::*field) {
    return f == AF_UNIX && c.credentials && (*c.credentials).*field == r.number;
  };
  auto vsock = [&](bool cid) {
    if (f != AF_VSOCK || c.address.size() < sizeof(sockaddr_vm)) return false;
    sockaddr_vm vm;
    memcpy(&vm, c.address.data(), sizeof vm);
    return (cid ? vm.svm_cid : vm.svm_port) == r.number;
  };
  switch (r.kind) {
    case Rule::Kind::kAny: return true;
    case Rule::Kind::kAnyV4: return f == AF_INET;
    case Rule::Kind::kAnyV6: return f == AF_INET6;
    case Rule::Kind::kAnyUnix: return f == AF_UNIX;
    case Rule::Kind::kAnyVsock: return f == AF_VSOCK;
    case Rule::Kind::kV4: return f == AF_INET && prefixMatches(addr, r.addr, r.prefix);
    case Rule::Kind::kV6: return f == AF_INET6 && prefixMatches(addr, r.addr, r.prefix);
    case Rule::Kind::kUid: return cred(&chain::Client::Credentials::uid);
    case Rule::Kind::kGid: return cred(&chain::Client::Credentials::gid);
    case Rule::Kind::kPid: return cred(&chain::Client::Credentials::pid);
    case Rule::Kind::kVsockCid: return vsock(true);
    case Rule::Kind::kVsockPort: return vsock(false);
  }
  return false;
}

std::string describe(const chain::Client& c) {
  uint8_t addr[16] = {};
  char text[INET6_ADDRSTRLEN] = "?";
  switch (family(c, addr)) {
    case AF_INET: inet_ntop(AF_INET, addr, text, sizeof text); return text;
    case AF_INET6: inet_ntop(AF_INET6, addr, text, sizeof text); return std::string("[") + text + "]";
    case AF_UNIX:
      if (!c.credentials) return "on a Unix socket";
      return "on a Unix socket (pid " + std::to_string(c.credentials->pid) + ", uid " +
             std::to_string(c.credentials->uid) + ", gid " + std::to_string(c.credentials->gid) + ")";
    case AF_VSOCK: return "on vsock";
    default: return "of unknown kind";
  }
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  std::vector<Rule> allow, deny;
  for (const auto& [key, value] : params) {
    auto rules = parseRules(value);
    auto& to = key == "allow" ? allow : deny;
    to.insert(to.end(), rules.begin(), rules.end());
  }
  return std::make_unique<IpFilter>(std::move(allow), std::move(deny));
}

}  // namespace nbdcage::filters::ip
