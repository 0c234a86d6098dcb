// A stage that passes every request through unchanged and tells a Watcher
// of each one going down and of its result coming back: the filters that
// only look (count, stats, log).
#pragma once

#include <array>
#include <memory>

#include "frontend/chain/filter.h"

namespace nbdcage::chain {

class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void sent(const Io& io) { (void)io; }
  // `io` as it was sent; `extents` entries are in its slot's buffer.
  virtual void done(const Io& io, int error, uint32_t extents) = 0;
};

class WatchingStage final : public FilterStage, private Completer {
 public:
  WatchingStage(Next& next, std::unique_ptr<Watcher> watcher) : FilterStage(next), watcher_(std::move(watcher)) {}
  void submit(const Io& io) override {
    up_[io.slot.tag] = io.done;
    watcher_->sent(io);
    Io down = io;
    down.done = this;
    next().submit(down);
  }

 private:
  void complete(const Io& io, int error, uint32_t extents) override {
    Io back = io;
    back.done = up_[io.slot.tag];
    watcher_->done(back, error, extents);
    back.done->complete(back, error, extents);
  }
  std::unique_ptr<Watcher> watcher_;  // destroyed with the stage: the handle's close
  std::array<Completer*, ipc::kRingEntries> up_{};
};

}  // namespace nbdcage::chain
