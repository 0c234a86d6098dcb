#include "frontend/chain/chain.h"

#include <sys/socket.h>

#include "frontend/host/remote-handle.h"
#include "frontend/host/supervisor.h"

namespace nbdcage::chain {

Client Client::of(int fd) {
  Client c;
  c.fd = fd;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && len <= sizeof ss) {
    auto* p = reinterpret_cast<const uint8_t*>(&ss);
    c.address.assign(p, p + len);
    ucred cred{};
    socklen_t clen = sizeof cred;
    if (ss.ss_family == AF_UNIX && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
      c.credentials = Credentials{cred.pid, cred.uid, cred.gid};
  }
  return c;
}

namespace {
// Runs `fn`; a filter's refusal (any std::exception) reaches the handshake
// as a HostError, the one kind it answers the client with.
template <typename Fn>
auto refusalsAsHostError(Fn&& fn) {
  try {
    return fn();
  } catch (const frontend::HostError&) {
    throw;
  } catch (const std::exception& e) {
    throw frontend::HostError(e.what());
  }
}

std::string callerName(const std::vector<std::unique_ptr<Filter>>& filters, size_t stagesAbove) {
  return stagesAbove == 0 ? "the client" : std::string("filter ") + filters[stagesAbove - 1]->name();
}
}  // namespace

Handle::Handle(kj::Own<Bottom> bottom, const std::vector<std::unique_ptr<Filter>>& filters,
               const std::string& exportName, bool readonly)
    : name_(exportName), bottom_(kj::mv(bottom)) {
  Next* below = bottom_.get();
  for (size_t i = filters.size(); i > 0; --i) {
    boundaries_.push_back(kj::heap<Boundary>(*below, callerName(filters, i)));
    stages_.push_back(filters[i - 1]->open(*boundaries_.back(), exportName, readonly));
    below = stages_.back().get();
  }
  boundaries_.push_back(kj::heap<Boundary>(*below, callerName(filters, 0)));
}

Handle::~Handle() {
  // Top down: a filter's stage closes before what it stands on.
  while (!boundaries_.empty()) {
    boundaries_.pop_back();
    if (!stages_.empty()) stages_.pop_back();
  }
}

Chain::Chain(std::vector<std::unique_ptr<Filter>> filters, frontend::Supervisor& supervisor)
    : filters_(std::move(filters)), supervisor_(supervisor) {}

// The empty name is the plugin's default export, by its own name: the
// filters, the plugin's open (nbdkit_export_name) and NBD_INFO_NAME all see
// that one, as with nbdkit.
kj::Own<Handle> Chain::open(const std::string& exportName, bool readonly, const Client& client) {
  std::string name = exportName.empty() ? supervisor_.defaultExport(readonly) : exportName;
  auto remote = supervisor_.open(name, readonly, client);
  return refusalsAsHostError([&] { return kj::heap<Handle>(kj::mv(remote), filters_, name, readonly); });
}

ExportList Chain::listFrom(size_t index, bool readonly) {
  if (index == filters_.size()) return supervisor_.listExports(readonly);
  return filters_[index]->listExports(readonly, [this, index](bool ro) { return listFrom(index + 1, ro); });
}

ExportList Chain::listExports(bool readonly) {
  return refusalsAsHostError([&] { return listFrom(0, readonly); });
}

bool Chain::preconnect(const Client& client) {
  for (size_t i = 0; i < filters_.size(); ++i)
    if (!filters_[i]->preconnect(client)) {
      while (i-- > 0) filters_[i]->disconnect();  // those that let it in
      return false;
    }
  return true;
}

void Chain::disconnect() {
  for (auto& f : filters_) f->disconnect();
}

bool Chain::exitBeforeServing() {
  for (auto& f : filters_)
    if (f->exitBeforeServing()) return true;
  return false;
}

void Chain::start(ServerControl& control) {
  for (auto& f : filters_) f->start(control);
}

}  // namespace nbdcage::chain
