// rate: limits the bandwidth of reads and of writes (each on its own), for
// the server as a whole (rate=) and per connection (connection-rate=), in
// bits per second, with nbdkit's parameters (rate-file= and
// connection-rate-file= change them while it runs; burstiness= is the
// bucket's size in seconds).  A request over the limit is held back in the
// filter until its bits are allowed, on the connection's own loop: the
// connection keeps answering what came before.  See nbdcage-rate-filter(1).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::rate {

// A token bucket of bits.  take() returns how long the caller must wait
// before using `bits` (0: at once); what is taken beyond the bucket is a
// debt the next callers wait for too.  rate 0: no limit.
class Bucket {
 public:
  using Clock = std::chrono::steady_clock;
  Bucket(double bitsPerSecond, double burstSeconds, Clock::time_point now);
  Clock::duration take(double bits, Clock::time_point now);
  void setRate(double bitsPerSecond, Clock::time_point now);
  double rate() const { return rate_; }

 private:
  void refill(Clock::time_point now);
  double rate_, burst_, tokens_;
  Clock::time_point last_;
};

// "1M" -> 1048576 (K, M, G, T: powers of 1024), else -1.
double parseBits(const std::string& text);

inline bool takesKey(const std::string& key) {
  for (const char* k : {"rate", "connection-rate", "rate-file", "connection-rate-file", "burstiness"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::rate
