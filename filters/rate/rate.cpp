#include "filters/rate/rate.h"

#include "frontend/chain/held.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace nbdcage::filters::rate {

Bucket::Bucket(double bitsPerSecond, double burstSeconds, Clock::time_point now)
    : rate_(bitsPerSecond), burst_(burstSeconds), tokens_(bitsPerSecond * burstSeconds), last_(now) {}

void Bucket::refill(Clock::time_point now) {
  double seconds = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  if (seconds > 0) tokens_ = std::min(rate_ * burst_, tokens_ + seconds * rate_);
}

Bucket::Clock::duration Bucket::take(double bits, Clock::time_point now) {
  if (rate_ <= 0) return Clock::duration::zero();
  refill(now);
  tokens_ -= bits;
  if (tokens_ >= 0) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(-tokens_ / rate_));
}

void Bucket::setRate(double bitsPerSecond, Clock::time_point now) {
  refill(now);
  rate_ = bitsPerSecond;
  tokens_ = std::min(tokens_, rate_ * burst_);
}

double parseBits(const std::string& text) {
  char* end;
  errno = 0;
  double v = text.empty() ? -1 : strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || v < 0 || !std::isfinite(v)) return -1;
  std::string unit = end;
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1}, {"k", 1024.0}, {"K", 1024.0}, {"M", 1048576.0}, {"G", 1073741824.0}, {"T", 1099511627776.0}};
  for (const auto& [u, f] : kUnits)
    if (unit == u) return v * f;
  return -1;
}

namespace {

using Clock = Bucket::Clock;

// A rate that a file may change: read again at most every 200 ms, when the
// file's modification time moved.
class RateSource {
 public:
  RateSource(double initial, std::string file) : rate_(initial), file_(std::move(file)) {}
  // Returns the rate now (re-reading the file if it is time to).
  double current(Clock::time_point now) {
    if (file_.empty() || now < nextCheck_) return rate_;
    nextCheck_ = now + std::chrono::milliseconds(200);
    struct stat st;
    if (stat(file_.c_str(), &st) != 0) return rate_;  // gone: the last rate stays
    if (st.st_mtim.tv_sec == seen_.tv_sec && st.st_mtim.tv_nsec == seen_.tv_nsec) return rate_;
    seen_ = st.st_mtim;
    std::ifstream in(file_);
    std::string text;
    in >> text;
    double v = parseBits(text);
    if (v >= 0) rate_ = v;
    return rate_;
  }
  bool limited() const { return rate_ > 0 || !file_.empty(); }

 private:
  double rate_;
  std::string file_;
  Clock::time_point nextCheck_{};
  timespec seen_{};
};

// The buckets shared by every connection (rate=), one for reads and one for
// writes, behind a lock.
struct Shared {
  std::mutex lock;
  RateSource source;
  Bucket read, write;
  Shared(double rate, std::string file, double burst)
      : source(rate, std::move(file)), read(rate, burst, Clock::now()), write(rate, burst, Clock::now()) {}
};

struct Settings {
  double rate = 0, connectionRate = 0, burst = 2.0;
  std::string rateFile, connectionRateFile;
};

class RateStage final : public chain::FilterStage, public chain::Timed {
 public:
  RateStage(chain::Next& next, Shared& shared, const Settings& s)
      : FilterStage(next),
        shared_(shared),
        source_(s.connectionRate, s.connectionRateFile),
        read_(s.connectionRate, s.burst, Clock::now()),
        write_(s.connectionRate, s.burst, Clock::now()) {}

  void submit(const chain::Io& io) override {
    bool reading = io.op == ipc::Op::kRead;
    if (!reading && io.op != ipc::Op::kWrite) {
      // Zero, trim, flush...: cost nothing on the wire; but they must not
      // overtake what is held back before them.
      if (held_.empty()) next().submit(io);
      else held_.hold(*held_.last(), io);
      return;
    }
    auto now = Clock::now();
    double bits = 8.0 * io.count;
    read_.setRate(source_.current(now), now);
    write_.setRate(source_.current(now), now);
    Clock::duration wait = (reading ? read_ : write_).take(bits, now);
    {
      std::lock_guard lock(shared_.lock);
      double total = shared_.source.current(now);
      shared_.read.setRate(total, now);
      shared_.write.setRate(total, now);
      wait = std::max(wait, (reading ? shared_.read : shared_.write).take(bits, now));
    }
    auto at = std::max(now + wait, held_.last().value_or(now));  // in order
    if (at <= now) next().submit(io);
    else held_.hold(at, io);
  }

  std::optional<Clock::time_point> nextTimer() const override { return held_.next(); }
  void onTimer(Clock::time_point now) override { held_.releaseDue(now, next()); }

 private:
  Shared& shared_;
  RateSource source_;
  Bucket read_, write_;
  chain::HeldRequests held_;
};

class RateFilter final : public chain::Filter {
 public:
  explicit RateFilter(const Settings& s) : settings_(s), shared_(s.rate, s.rateFile, s.burst) {}
  const char* name() const override { return "rate"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<RateStage>(next, shared_, settings_);
  }

 private:
  const Settings settings_;
  Shared shared_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Settings s;
  for (const auto& [key, value] : params) {
    if (key == "rate-file") s.rateFile = value;
    else if (key == "connection-rate-file") s.connectionRateFile = value;
    else if (key == "burstiness") {
      char* end;
      s.burst = strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(s.burst > 0) || s.burst > 3600)
        throw std::runtime_error("burstiness must be a number of seconds above 0, not '" + value + "'");
    } else {
      double v = parseBits(value);
      if (v < 0) throw std::runtime_error(key + " must be bits per second (with K, M, G), not '" + value + "'");
      (key == "rate" ? s.rate : s.connectionRate) = v;
    }
  }
  return std::make_unique<RateFilter>(s);
}

}  // namespace nbdcage::filters::rate
