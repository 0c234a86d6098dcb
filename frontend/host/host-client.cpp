#include "frontend/host/host-client.h"

#include <fcntl.h>

#include <kj/debug.h>

#include <cstring>

#include "frontend/host/validate.h"

namespace nbdcage::frontend {

namespace schema = ipc::schema;

namespace {

// Hands one of our descriptors to the host inside an RPC message.
class FdCap final : public schema::FileDescriptor::Server {
 public:
  explicit FdCap(int fd) {
    int copy;
    KJ_SYSCALL(copy = fcntl(fd, F_DUPFD_CLOEXEC, 3));
    fd_ = kj::AutoCloseFd(copy);
  }
  kj::Maybe<int> getFd() override { return fd_.get(); }

 private:
  kj::AutoCloseFd fd_;
};

// Runs `check` on a host's answer; an answer that fails it fails the call,
// with the reason.
template <typename Check>
auto checked(Check&& check) {
  try {
    return check();
  } catch (const HostError& e) {
    kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(e.what())));
  }
}

}  // namespace

HostClient::HostClient(kj::AsyncIoContext& io, kj::AutoCloseFd socket) : closes_(kj::heap<kj::TaskSet>(quiet_)) {
  stream_ = io.lowLevelProvider->wrapUnixSocketFd(socket.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  // capnp 0.9 has one fd limit for both directions, and sends none when it
  // is 0, so it must be 3 (open's three descriptors).  The frontend still
  // takes no descriptor from a host: it never calls getFd() on a host's
  // capability, so whatever a host attaches is closed with its message.
  network_ = kj::heap<capnp::TwoPartyVatNetwork>(*stream_, 3, capnp::rpc::twoparty::Side::CLIENT);
  rpc_ = kj::heap(capnp::makeRpcClient(*network_));
  capnp::word scratch[4];
  memset(scratch, 0, sizeof scratch);
  capnp::MallocMessageBuilder message(scratch);
  auto vatId = message.getRoot<capnp::rpc::twoparty::VatId>();
  vatId.setSide(capnp::rpc::twoparty::Side::SERVER);
  host_ = rpc_->bootstrap(vatId).castAs<schema::PluginHost>();
}

// In the order that lets each go: calls, then the RPC system, then the socket.
HostClient::~HostClient() {
  closes_ = nullptr;
  stopping_ = nullptr;
  handles_.clear();
  host_ = nullptr;
  rpc_ = nullptr;
  network_ = nullptr;
  stream_ = nullptr;
}

kj::Promise<HostClient::Hello> HostClient::hello() {
  auto req = host_.helloRequest();
  req.setProtocolVersion(schema::PROTOCOL_VERSION);
  return req.send().then([](capnp::Response<schema::PluginHost::HelloResults>&& resp) {
    auto plugin = resp.getPlugin();
    return Hello{resp.getProtocolVersion(), plugin.getName().cStr(), plugin.getApiVersion(), plugin.getThreadModel()};
  });
}

kj::Promise<chain::ExportInfo> HostClient::open(uint64_t id, const std::string& exportName, bool readonly,
                                                const RingResources& rings, const chain::Client& peer) {
  auto req = host_.openRequest();
  req.setExportName(exportName);
  req.setReadonly(readonly);
  auto r = req.initRings();
  r.setRegion(kj::heap<FdCap>(rings.region.fd()));
  r.setRegionSize(rings.region.size());
  r.setSubmitBell(kj::heap<FdCap>(rings.hostSubmitEnd.get()));
  r.setCompleteBell(kj::heap<FdCap>(rings.hostCompleteEnd.get()));
  auto p = req.initPeer();
  p.setAddress(kj::arrayPtr(peer.address.data(), peer.address.size()));
  if (peer.credentials) {
    p.setHasCredentials(true);
    p.setPid(peer.credentials->pid);
    p.setUid(peer.credentials->uid);
    p.setGid(peer.credentials->gid);
  }
  return req.send().then([this, id](capnp::Response<schema::PluginHost::OpenResults>&& resp) {
    auto info = checked([&] { return validateExport(resp.getExport()); });
    handles_.insert_or_assign(id, resp.getHandle());
    return info;
  });
}

kj::Promise<void> HostClient::close(uint64_t id) {
  auto it = handles_.find(id);
  if (it == handles_.end()) return kj::READY_NOW;
  auto cap = kj::mv(it->second);
  handles_.erase(it);
  // The call itself stays here, so it goes with this client; the caller's
  // promise then rejects.
  auto paf = kj::newPromiseAndFulfiller<void>();
  closes_->add(cap.closeRequest()
                  .send()
                  .ignoreResult()
                  .catch_([](kj::Exception&&) {})
                  .then([done = kj::mv(paf.fulfiller)]() mutable { done->fulfill(); }));
  return kj::mv(paf.promise);
}

kj::Promise<std::vector<std::pair<std::string, std::string>>> HostClient::listExports(bool readonly) {
  auto req = host_.listExportsRequest();
  req.setReadonly(readonly);
  return req.send().then([](capnp::Response<schema::PluginHost::ListExportsResults>&& resp) {
    return checked([&] { return validateExportList(resp.getExports()); });
  });
}

kj::Promise<void> HostClient::ping() { return host_.pingRequest().send().ignoreResult(); }

kj::Promise<std::string> HostClient::defaultExport(bool readonly) {
  auto req = host_.defaultExportRequest();
  req.setReadonly(readonly);
  return req.send().then([](capnp::Response<schema::PluginHost::DefaultExportResults>&& resp) {
    return checked([&] { return validateExportName(resp.getName()); });
  });
}

void HostClient::announceStopping() {
  stopping_ =
      host_.serverStoppingRequest().send().ignoreResult().catch_([](kj::Exception&&) {}).eagerlyEvaluate(nullptr);
}

kj::Promise<void> HostClient::shutdownRequested() {
  return host_.waitForShutdownRequest().send().ignoreResult().catch_(
      [](kj::Exception&&) -> kj::Promise<void> { return kj::NEVER_DONE; });  // a host that dies asks nothing
}

kj::Promise<void> HostClient::disconnected() { return network_->onDisconnect(); }

void HostClient::shutdownWrite() { stream_->shutdownWrite(); }

}  // namespace nbdcage::frontend
