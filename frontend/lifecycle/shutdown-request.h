// A stop asked for from any thread (a filter's): the loop thread sees it as
// a promise.  Made in main() before the chain, so it outlives every filter
// that may still call it.
#pragma once

#include <kj/async.h>

#include <mutex>

#include "frontend/chain/filter.h"

namespace nbdcage::lifecycle {

class ShutdownRequest final : public chain::ServerControl {
 public:
  // On the loop thread.
  ShutdownRequest();
  // Any thread, any number of times.
  void requestShutdown() override;
  // Loop thread, once: resolves at the first request.
  kj::Promise<void> requested();

 private:
  std::mutex lock_;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> fulfiller_;
  kj::Promise<void> promise_;
};

}  // namespace nbdcage::lifecycle
