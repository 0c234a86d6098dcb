#include "filters/time-limit/time-limit.h"

#include <cerrno>
#include <cstdio>

#include "filters/params.h"

namespace nbdcage::filters::timelimit {

namespace {

using Clock = chain::Timed::Clock;

class Stage final : public chain::FilterStage, public chain::Timed, public chain::Ender {
 public:
  Stage(chain::Next& next, Clock::duration limit) : FilterStage(next), limit_(limit), until_(Clock::now() + limit) {}
  void submit(const chain::Io& io) override {
    if (ended_ || Clock::now() >= until_) return io.done->complete(io, ESHUTDOWN, 0);
    next().submit(io);
  }
  std::optional<Clock::time_point> nextTimer() const override {
    if (ended_) return std::nullopt;
    return until_;
  }
  void onTimer(Clock::time_point now) override {
    if (ended_ || now < until_) return;
    ended_ = true;
    fprintf(stderr, "nbdcage: time-limit: the connection reached its limit of %.3g s; closing it\n",
            std::chrono::duration<double>(limit_).count());
  }
  bool ended() const override { return ended_; }

 private:
  const Clock::duration limit_;
  const Clock::time_point until_;
  bool ended_ = false;
};

class TimeLimit final : public chain::Filter {
 public:
  explicit TimeLimit(Clock::duration limit) : limit_(limit) {}
  const char* name() const override { return "time-limit"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, limit_);
  }

 private:
  const Clock::duration limit_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Clock::duration limit = std::chrono::seconds(60);
  for (const auto& [key, value] : params) limit = std::chrono::duration_cast<Clock::duration>(parseDelay(key, value));
  return std::make_unique<TimeLimit>(limit);
}

}  // namespace nbdcage::filters::timelimit
