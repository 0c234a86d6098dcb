// The frontend's RPC end of one plugin host: Cap'n Proto over the control
// socket, every answer checked (validate.h) before anyone sees it.  It
// knows nothing of processes (HostProcess), deadlines or restarts (the
// Supervisor): a call that fails rejects its promise, DISCONNECTED when
// the host went away.  Loop thread only.
//
//   Supervisor ---hello/open/listExports/close---> HostClient ---RPC---> host
//              <--checked answers / exceptions----            <-------
//   shutdownRequested(), disconnected(): what the host does unasked
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/client.h"
#include "frontend/chain/next.h"
#include "frontend/host/remote-handle.h"
#include "host.capnp.h"

namespace nbdcage::frontend {

class HostClient {
 public:
  // Speaks over `socket`, the frontend's end of the host's control socket.
  HostClient(kj::AsyncIoContext& io, kj::AutoCloseFd socket);
  ~HostClient();

  struct Hello {
    uint32_t protocolVersion;
    std::string plugin;
    uint32_t apiVersion;
    uint32_t threadModel;
  };
  // The first call to any host: what protocol it speaks, what it serves.
  kj::Promise<Hello> hello();

  // Opens a handle on `exportName`, handing the host its ends of `rings`;
  // `id` names it for close().  Resolves with the checked export facts.
  kj::Promise<chain::ExportInfo> open(uint64_t id, const std::string& exportName, bool readonly,
                                      const RingResources& rings, const chain::Client& peer);
  // Closes handle `id` (nothing if there is none).  Rejects only if this
  // client goes first.
  kj::Promise<void> close(uint64_t id);
  kj::Promise<std::vector<std::pair<std::string, std::string>>> listExports(bool readonly);
  // The plugin's name for the empty export (empty if it has none).
  kj::Promise<std::string> defaultExport(bool readonly);

  // Answered by the host's RPC loop itself (no plugin code): a host that
  // does not answer is stopped or broken.
  kj::Promise<void> ping();
  // Tells the plugin an orderly shutdown has begun (its sleeps end early).
  void announceStopping();
  // Resolves when the plugin calls nbdkit_shutdown(); never if the host dies.
  kj::Promise<void> shutdownRequested();
  // Resolves when the control socket closes (the host died, or shut it).
  kj::Promise<void> disconnected();
  // Shuts our sending side: a host still loading sees EOF and exits.
  void shutdownWrite();

 private:
  kj::Own<kj::AsyncCapabilityStream> stream_;
  kj::Own<capnp::TwoPartyVatNetwork> network_;
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc_;
  ipc::schema::PluginHost::Client host_ = nullptr;
  std::map<uint64_t, ipc::schema::Handle::Client> handles_;
  kj::Promise<void> stopping_ = nullptr;  // the serverStopping call, once sent
  struct Quiet final : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {}
  } quiet_;
  kj::Own<kj::TaskSet> closes_;  // close calls in flight
};

}  // namespace nbdcage::frontend
