// The serving phase: listeners or stdin/stdout, one thread per connection,
// the captive command, signals, and an orderly shutdown.
#pragma once

#include <kj/async-io.h>

#include <functional>
#include <map>
#include <mutex>

#include "frontend/chain/chain.h"
#include "frontend/cli.h"
#include "frontend/host/supervisor.h"
#include "frontend/lifecycle/shutdown-request.h"

namespace nbdcage {

// Live connections, so that shutdown can end them and wait for them.
class ConnectionSet {
 public:
  uint64_t add(int fd);
  void remove(uint64_t id);
  void shutdownAll();
  size_t size() const;

 private:
  mutable std::mutex lock_;
  uint64_t next_ = 1;
  std::map<uint64_t, int> live_;
};

// Serves until a signal, the end of the captive command, or (with -s) the
// end of the connection.  Returns nbdcage's exit status.
// `ready` runs once the listeners accept (before a --run command starts);
// returning false aborts with status 1.  The chain's filters start then too.
// `stop` is how filters ask the server to stop.
int serve(const Config& config, kj::AsyncIoContext& io, frontend::Supervisor& supervisor, chain::Chain& chain,
          lifecycle::ShutdownRequest& stop, const std::function<bool()>& ready);

}  // namespace nbdcage
