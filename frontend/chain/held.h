// Requests a filter stage holds back until a time of their own (rate,
// delay), in time order: the stage's chain::Timed answers come from here.
#pragma once

#include <deque>
#include <iterator>
#include <optional>

#include "frontend/chain/filter.h"

namespace nbdcage::chain {

class HeldRequests {
 public:
  using Clock = Timed::Clock;
  // Holds `io` until `at` (requests due at the same time keep their order).
  void hold(Clock::time_point at, const Io& io) {
    auto it = held_.end();
    while (it != held_.begin() && std::prev(it)->at > at) --it;
    held_.insert(it, {at, io});
  }
  bool empty() const { return held_.empty(); }
  // The time the last one held goes (nullopt: none held).
  std::optional<Clock::time_point> last() const {
    if (held_.empty()) return std::nullopt;
    return held_.back().at;
  }
  std::optional<Clock::time_point> next() const {
    if (held_.empty()) return std::nullopt;
    return held_.front().at;
  }
  // Submits to `below`, in order, every request due by `now`.
  void releaseDue(Clock::time_point now, Next& below) {
    while (!held_.empty() && held_.front().at <= now) {
      Io io = held_.front().io;
      held_.pop_front();
      below.submit(io);
    }
  }

 private:
  struct Held {
    Clock::time_point at;
    Io io;
  };
  std::deque<Held> held_;
};

}  // namespace nbdcage::chain
