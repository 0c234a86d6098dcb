#include "frontend/lifecycle/shutdown-request.h"

namespace nbdcage::lifecycle {

ShutdownRequest::ShutdownRequest() : promise_(nullptr) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  fulfiller_ = kj::mv(paf.fulfiller);
  promise_ = kj::mv(paf.promise);
}

void ShutdownRequest::requestShutdown() {
  std::lock_guard lock(lock_);
  if (fulfiller_->isWaiting()) fulfiller_->fulfill();
}

kj::Promise<void> ShutdownRequest::requested() { return kj::mv(promise_); }

}  // namespace nbdcage::lifecycle
