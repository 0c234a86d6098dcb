#include "filters/count/count.h"

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <stdexcept>

#include "frontend/chain/watch.h"

namespace nbdcage::filters::count {

namespace {

struct Totals {
  std::atomic<uint64_t> read{0}, written{0}, zeroed{0}, trimmed{0};
};

// Counts what completed successfully, as the client asked for it.
class Counter final : public chain::Watcher {
 public:
  explicit Counter(Totals& t) : totals_(t) {}
  void done(const chain::Io& io, int error, uint32_t) override {
    if (error != 0) return;
    std::atomic<uint64_t>* to = io.op == ipc::Op::kRead    ? &totals_.read
                                : io.op == ipc::Op::kWrite ? &totals_.written
                                : io.op == ipc::Op::kZero  ? &totals_.zeroed
                                : io.op == ipc::Op::kTrim  ? &totals_.trimmed
                                                           : nullptr;
    if (to) to->fetch_add(io.count, std::memory_order_relaxed);
  }

 private:
  Totals& totals_;
};

class Count final : public chain::Filter {
 public:
  ~Count() override {
    fprintf(stderr, "nbdcage: count: %" PRIu64 " bytes read, %" PRIu64 " written, %" PRIu64 " zeroed, %" PRIu64
            " trimmed\n", totals_.read.load(), totals_.written.load(), totals_.zeroed.load(), totals_.trimmed.load());
  }
  const char* name() const override { return "count"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<chain::WatchingStage>(next, std::make_unique<Counter>(totals_));
  }

 private:
  Totals totals_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  if (!params.empty()) throw std::runtime_error("it takes no parameters");
  return std::make_unique<Count>();
}

}  // namespace nbdcage::filters::count
