// The PluginHost RPC interface (ipc/schema/host.capnp), served on the
// host's single event-loop thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

#include <kj/async-unix.h>

#include "host.capnp.h"
#include "ipc/shm-region.h"
#include "pluginhost/plugin.h"

namespace nbdcage::host {

struct HostOptions {
  bool readonly = false;
  unsigned threads = 16;  // workers per handle for PARALLEL plugins
};

// SERIALIZE_CONNECTIONS: one plugin handle open at a time; a second
// connection's open waits until the first handle is closed.
class ConnectionGate {
 public:
  void acquire() {
    std::unique_lock lock(lock_);
    free_.wait(lock, [this] { return !busy_; });
    busy_ = true;
  }
  void release() {
    std::lock_guard lock(lock_);
    busy_ = false;
    free_.notify_one();
  }

 private:
  std::mutex lock_;
  std::condition_variable free_;
  bool busy_ = false;
};

// What the threads running plugin calls off the RPC thread (open,
// list_exports, default_export, close) share with the server.  A thread
// may outlive the RPC call that started it (the frontend gave up), never the
// server: its destructor waits for them, so the plugin is not unloaded under
// a running call.
struct OpenState {
  ConnectionGate gate;  // SERIALIZE_CONNECTIONS
  std::mutex lock;
  std::condition_variable idle;
  unsigned running = 0;  // guarded by lock
};

class HostServer final : public ipc::schema::PluginHost::Server {
 public:
  HostServer(Plugin& plugin, HostOptions options, kj::UnixEventPort& events);
  ~HostServer();

 protected:
  kj::Promise<void> hello(HelloContext context) override;
  kj::Promise<void> open(OpenContext context) override;
  kj::Promise<void> listExports(ListExportsContext context) override;
  kj::Promise<void> defaultExport(DefaultExportContext context) override;
  kj::Promise<void> ping(PingContext context) override;
  kj::Promise<void> waitForShutdown(WaitForShutdownContext context) override;
  kj::Promise<void> serverStopping(ServerStoppingContext context) override;

 private:
  Plugin& plugin_;
  HostOptions options_;
  std::mutex serializeAll_;
  std::shared_ptr<OpenState> opens_ = std::make_shared<OpenState>();
  // nbdkit_shutdown may run on any thread: it rings this doorbell, whose
  // other end the RPC loop watches.
  ipc::DoorbellPipe shutdownPipe_ = ipc::DoorbellPipe::create();
  ipc::Doorbell shutdownBell_{kj::mv(shutdownPipe_.ringEnd)};
  kj::UnixEventPort::FdObserver shutdownObserver_;
  kj::ForkedPromise<void> shutdownRequested_;
};

}  // namespace nbdcage::host
