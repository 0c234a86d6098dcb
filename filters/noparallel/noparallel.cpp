#include "filters/noparallel/noparallel.h"

#include <deque>
#include <stdexcept>

namespace nbdcage::filters::noparallel {

namespace {

// At most one request of this connection below at a time; the rest wait
// here, in order, and go down one by one as each completes.
class Stage final : public chain::FilterStage, private chain::Completer {
 public:
  explicit Stage(chain::Next& next) : FilterStage(next) {}
  void submit(const chain::Io& io) override {
    waiting_.push_back(io);
    if (!busy_) sendNext();
  }

 private:
  void sendNext() {
    if (waiting_.empty()) return;
    current_ = waiting_.front();
    waiting_.pop_front();
    busy_ = true;
    chain::Io down = current_;
    down.done = this;
    next().submit(down);
  }
  void complete(const chain::Io& io, int error, uint32_t extents) override {
    chain::Io up = current_;
    busy_ = false;
    up.done->complete(up, error, extents);  // may submit again (and queue)
    (void)io;
    if (!busy_) sendNext();
  }
  std::deque<chain::Io> waiting_;
  chain::Io current_{};
  bool busy_ = false;
};

class NoParallel final : public chain::Filter {
 public:
  const char* name() const override { return "noparallel"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override { return kj::heap<Stage>(next); }
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  for (const auto& [key, v] : params)
    if (v != "requests")
      throw std::runtime_error("serialize=" + v + " is not supported yet (serialize=requests is: one request of a "
                               "connection at a time)");
  return std::make_unique<NoParallel>();
}

}  // namespace nbdcage::filters::noparallel
