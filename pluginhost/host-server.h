// The PluginHost RPC interface (ipc/schema/host.capnp), served on the
// host's single event-loop thread.
#pragma once

#include <mutex>

#include "host.capnp.h"
#include "pluginhost/plugin.h"

namespace nbdcage::host {

struct HostOptions {
  bool readonly = false;
  unsigned threads = 16;  // workers per handle for PARALLEL plugins
};

class HostServer final : public ipc::schema::PluginHost::Server {
 public:
  HostServer(Plugin& plugin, HostOptions options) : plugin_(plugin), options_(options) {}

 protected:
  kj::Promise<void> hello(HelloContext context) override;
  kj::Promise<void> open(OpenContext context) override;
  kj::Promise<void> listExports(ListExportsContext context) override;
  kj::Promise<void> defaultExport(DefaultExportContext context) override;
  kj::Promise<void> ping(PingContext context) override;

 private:
  Plugin& plugin_;
  HostOptions options_;
  std::mutex serializeAll_;
};

}  // namespace nbdcage::host
