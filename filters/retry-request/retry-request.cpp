#include "filters/retry-request/retry-request.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "filters/params.h"
#include "frontend/chain/held.h"

namespace nbdcage::filters::retryrequest {

namespace {

using Clock = chain::Timed::Clock;

struct Settings {
  unsigned retries = 2;
  Clock::duration delay = std::chrono::seconds(2);
  bool open = true;  // the plugin's open is retried too
};

// A failed request waits in the stage, its slot still held, and goes down
// again unchanged.
class Stage final : public chain::FilterStage, private chain::Completer, public chain::Timed {
 public:
  Stage(chain::Next& next, const Settings& s) : FilterStage(next), s_(s) {}
  void submit(const chain::Io& io) override {
    Req& r = req_[io.slot.tag];
    r.up = io;
    r.tries = 0;
    chain::Io down = io;
    down.done = this;
    next().submit(down);
  }
  std::optional<Clock::time_point> nextTimer() const override { return held_.next(); }
  void onTimer(Clock::time_point now) override { held_.releaseDue(now, next()); }

 private:
  struct Req {
    chain::Io up{};
    unsigned tries = 0;
  };
  void complete(const chain::Io& io, int error, uint32_t extents) override {
    Req& r = req_[io.slot.tag];
    if (error != 0 && error != chain::kDisconnectNow && r.tries < s_.retries) {
      ++r.tries;
      fprintf(stderr, "nbdcage: retry-request: %s failed: %s; sending it again in %.3g s (retry %u of %u)\n",
              ipc::opName(io.op), strerror(error), std::chrono::duration<double>(s_.delay).count(), r.tries,
              s_.retries);
      held_.hold(Clock::now() + s_.delay, io);
      return;
    }
    r.up.done->complete(r.up, error, extents);
  }
  const Settings& s_;
  std::array<Req, ipc::kRingEntries> req_{};
  chain::HeldRequests held_;
};

class RetryRequest final : public chain::Filter {
 public:
  explicit RetryRequest(const Settings& s) : s_(s) {}
  const char* name() const override { return "retry-request"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override { return kj::heap<Stage>(next, s_); }
  std::optional<std::chrono::nanoseconds> retryOpen(unsigned attempt) const override {
    if (!s_.open || attempt - 1 > s_.retries) return std::nullopt;
    return s_.delay;
  }

 private:
  const Settings s_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Settings s;
  for (const auto& [key, value] : params) {
    if (key == "retry-request-retries") {
      s.retries = parseCount(key, value, 1000);
    } else if (key == "retry-request-delay") {
      s.delay = std::chrono::duration_cast<Clock::duration>(parseDelay(key, value));
    } else {
      s.open = parseBool(key, value);
    }
  }
  return std::make_unique<RetryRequest>(s);
}

}  // namespace nbdcage::filters::retryrequest
