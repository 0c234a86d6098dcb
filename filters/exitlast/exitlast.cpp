#include "filters/exitlast/exitlast.h"

#include <cstdio>
#include <mutex>

namespace nbdcage::filters::exitlast {

namespace {

// Counts open handles, so a client that only asked NBD_OPT_INFO (which
// opens and closes one) counts as a client that came and went.
class ExitLast final : public chain::Filter {
 public:
  const char* name() const override { return "exitlast"; }
  void start(chain::ServerControl& control) override {
    std::lock_guard lock(lock_);
    control_ = &control;
  }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Counted>(next, *this);
  }

 private:
  class Counted final : public chain::FilterStage {
   public:
    Counted(chain::Next& next, ExitLast& f) : FilterStage(next), f_(f) {
      std::lock_guard lock(f_.lock_);
      ++f_.open_;
    }
    ~Counted() override {
      std::lock_guard lock(f_.lock_);
      if (--f_.open_ == 0 && f_.control_) {
        fprintf(stderr, "nbdcage: exitlast: exiting on last client connection\n");
        f_.control_->requestShutdown();
      }
    }

   private:
    ExitLast& f_;
  };

  std::mutex lock_;
  unsigned open_ = 0;
  chain::ServerControl* control_ = nullptr;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>&) {
  return std::make_unique<ExitLast>();
}

}  // namespace nbdcage::filters::exitlast
