#include "filters/delay/delay.h"

#include "filters/params.h"
#include "frontend/chain/held.h"

#include <cerrno>
#include <cstdlib>
#include <iterator>
#include <stdexcept>

namespace nbdcage::filters::delay {

namespace {

using Clock = chain::Timed::Clock;

struct Delays {
  Clock::duration read{}, write{}, zero{}, trim{}, extents{}, cache{};
  bool fastZero = true;  // delay-fast-zero=false: fast zeroes fail at once instead (ENOTSUP)
};

class Stage final : public chain::FilterStage, public chain::Timed {
 public:
  Stage(chain::Next& next, const Delays& d) : FilterStage(next), d_(d) {}
  void submit(const chain::Io& io) override {
    Clock::duration wait{};
    switch (io.op) {
      case ipc::Op::kRead: wait = d_.read; break;
      case ipc::Op::kWrite: wait = d_.write; break;
      case ipc::Op::kZero:
        if ((io.flags & ipc::kFlagFastZero) && !d_.fastZero && d_.zero.count() > 0)
          return io.done->complete(io, ENOTSUP, 0);  // a slow zero is not a fast one
        wait = d_.zero;
        break;
      case ipc::Op::kTrim: wait = d_.trim; break;
      case ipc::Op::kExtents: wait = d_.extents; break;
      case ipc::Op::kCache: wait = d_.cache; break;
      default: break;
    }
    if (wait.count() == 0) return next().submit(io);
    // Each waits its own delay from its arrival: requests in flight at
    // once are delayed at once, as with nbdkit's threads.
    held_.hold(Clock::now() + wait, io);
  }
  std::optional<Clock::time_point> nextTimer() const override { return held_.next(); }
  void onTimer(Clock::time_point now) override { held_.releaseDue(now, next()); }

 private:
  const Delays d_;
  chain::HeldRequests held_;
};

class Delay final : public chain::Filter {
 public:
  explicit Delay(const Delays& d) : d_(d) {}
  const char* name() const override { return "delay"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override { return kj::heap<Stage>(next, d_); }

 private:
  const Delays d_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Delays d;
  for (const auto& [key, value] : params) {
    if (key == "delay-fast-zero") {
      d.fastZero = parseBool(key, value);
      continue;
    }
    Clock::duration v = std::chrono::duration_cast<Clock::duration>(parseDelay(key, value));
    if (key == "rdelay" || key == "delay-read") d.read = v;
    else if (key == "wdelay") d.write = d.zero = d.trim = v;  // as nbdkit: wdelay is every writing request
    else if (key == "delay-write") d.write = v;
    else if (key == "delay-zero") d.zero = v;
    else if (key == "delay-trim") d.trim = v;
    else if (key == "delay-extents") d.extents = v;
    else d.cache = v;
  }
  return std::make_unique<Delay>(d);
}

}  // namespace nbdcage::filters::delay
