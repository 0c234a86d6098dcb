#include "filters/stats/stats.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

#include "filters/params.h"
#include "frontend/chain/watch.h"

namespace nbdcage::filters::stats {

unsigned sizeBits(uint64_t count) { return count == 0 ? 0 : 63 - static_cast<unsigned>(__builtin_clzll(count)); }

unsigned alignBits(uint64_t offset) { return offset == 0 ? 64 : static_cast<unsigned>(__builtin_ctzll(offset)); }

std::string humanBytes(double bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(static_cast<uint64_t>(bytes)) + " bytes";
  int u = -1;
  while (bytes >= 1024 && u < 5) bytes /= 1024, ++u;
  char b[64];
  snprintf(b, sizeof b, "%.2f %s", bytes, kUnits[u]);
  return b;
}

namespace {

using Clock = std::chrono::steady_clock;

enum Kind { kRead, kWrite, kTrim, kZero, kExtents, kCache, kFlush, kKinds };
const char* const kNames[kKinds] = {"read", "write", "trim", "zero", "extents", "cache", "flush"};

Kind kindOf(ipc::Op op) {
  switch (op) {
    case ipc::Op::kRead: return kRead;
    case ipc::Op::kWrite: return kWrite;
    case ipc::Op::kTrim: return kTrim;
    case ipc::Op::kZero: return kZero;
    case ipc::Op::kExtents: return kExtents;
    case ipc::Op::kCache: return kCache;
    default: return kFlush;
  }
}

struct Totals {
  uint64_t ops = 0, bytes = 0;
  Clock::duration time{};
  std::map<unsigned, std::pair<uint64_t, uint64_t>> sizes;        // size bits -> requests, bytes
  std::map<std::pair<unsigned, unsigned>, uint64_t> alignments;  // size bits, align bits -> requests
};

class Stats;

class Timer final : public chain::Watcher {
 public:
  explicit Timer(Stats& s) : stats_(s) {}
  void sent(const chain::Io& io) override { at_[io.slot.tag] = Clock::now(); }
  void done(const chain::Io& io, int error, uint32_t) override;

 private:
  Stats& stats_;
  std::array<Clock::time_point, ipc::kRingEntries> at_{};
};

class Stats final : public chain::Filter {
 public:
  Stats(FILE* out, double threshold) : out_(out), threshold_(threshold), start_(Clock::now()) {}
  ~Stats() override {
    print();
    fclose(out_);
  }
  const char* name() const override { return "stats"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<chain::WatchingStage>(next, std::make_unique<Timer>(*this));
  }
  // What completed successfully (as nbdkit counts).
  void add(const chain::Io& io, Clock::duration took) {
    std::lock_guard<std::mutex> lock(mu_);
    Totals& t = totals_[kindOf(io.op)];
    ++t.ops;
    t.bytes += io.count;
    t.time += took;
    if (threshold_ > 0 && io.op != ipc::Op::kFlush) {
      unsigned bits = sizeBits(io.count);
      auto& s = t.sizes[bits];
      ++s.first;
      s.second += io.count;
      ++t.alignments[{bits, alignBits(io.offset)}];
    }
  }

 private:
  static double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
  void print() {
    std::lock_guard<std::mutex> lock(mu_);
    double elapsed = secs(Clock::now() - start_);
    uint64_t ops = 0, bytes = 0;
    for (const auto& t : totals_) ops += t.ops, bytes += t.bytes;
    fprintf(out_, "total: %llu ops, %.6f s, %s, %s/s\n", static_cast<unsigned long long>(ops), elapsed,
            humanBytes(static_cast<double>(bytes)).c_str(),
            humanBytes(elapsed > 0 ? static_cast<double>(bytes) / elapsed : 0).c_str());
    for (int k = 0; k < kKinds; ++k) {
      const Totals& t = totals_[k];
      if (t.ops == 0) continue;
      double busy = secs(t.time);
      fprintf(out_, "%s: %llu ops, %.6f s, %s, %s/s op, %s/s total\n", kNames[k],
              static_cast<unsigned long long>(t.ops), busy, humanBytes(static_cast<double>(t.bytes)).c_str(),
              humanBytes(busy > 0 ? static_cast<double>(t.bytes) / busy : 0).c_str(),
              humanBytes(elapsed > 0 ? static_cast<double>(t.bytes) / elapsed : 0).c_str());
      if (t.sizes.empty() || k == kFlush) continue;
      // The most common size classes, until `threshold_` of the requests
      // are shown; then the rest in one line.
      std::vector<std::pair<unsigned, std::pair<uint64_t, uint64_t>>> bySize(t.sizes.begin(), t.sizes.end());
      std::stable_sort(bySize.begin(), bySize.end(),
                       [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
      fprintf(out_, "  Request size and alignment breakdown:\n");
      uint64_t shown = 0, shownBytes = 0;
      for (const auto& [bits, n] : bySize) {
        if (static_cast<double>(shown) >= threshold_ * static_cast<double>(t.ops)) break;
        fprintf(out_, "    %u bits: %4.1f%% (%llu reqs, %s total)\n", bits, 100.0 * n.first / t.ops,
                static_cast<unsigned long long>(n.first), humanBytes(static_cast<double>(n.second)).c_str());
        // Alignments from the coarsest a request of this class has: a
        // request aligned to 2^k counts under every j <= k.
        std::map<unsigned, uint64_t> atLeast;
        for (const auto& [key, count] : t.alignments)
          if (key.first == bits) atLeast[key.second] += count;
        uint64_t cumulative = 0;
        std::vector<std::pair<unsigned, uint64_t>> lines;
        for (auto it = atLeast.rbegin(); it != atLeast.rend(); ++it) {
          cumulative += it->second;
          lines.emplace_back(it->first, cumulative);
        }
        for (auto it = lines.rbegin(); it != lines.rend(); ++it)
          fprintf(out_, "         %u bit aligned: %5.1f%% (%llu)\n", it->first, 100.0 * it->second / n.first,
                  static_cast<unsigned long long>(it->second));
        shown += n.first;
        shownBytes += n.second;
      }
      if (shown < t.ops)
        fprintf(out_, "    other sizes: %4.1f%% (%llu reqs, %s total)\n", 100.0 * (t.ops - shown) / t.ops,
                static_cast<unsigned long long>(t.ops - shown),
                humanBytes(static_cast<double>(t.bytes - shownBytes)).c_str());
      fprintf(out_, "\n");
    }
    fflush(out_);
  }

  FILE* out_;
  const double threshold_;
  const Clock::time_point start_;
  std::mutex mu_;
  std::array<Totals, kKinds> totals_;
};

void Timer::done(const chain::Io& io, int error, uint32_t) {
  if (error == 0) stats_.add(io, Clock::now() - at_[io.slot.tag]);
}

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string file;
  bool append = false;
  double threshold = 0.95;
  for (const auto& [key, value] : params) {
    if (key == "statsfile") {
      file = value;
    } else if (key == "statsappend") {
      append = parseBool(key, value);
    } else {
      unsigned pct = parseCount(key, value, 100);
      threshold = pct / 100.0;
    }
  }
  if (file.empty()) throw std::runtime_error("stats: statsfile=FILE is required");
  FILE* out = fopen(file.c_str(), append ? "a" : "w");
  if (!out) throw std::runtime_error("stats: statsfile: '" + file + "': " + strerror(errno));
  return std::make_unique<Stats>(out, threshold);
}

}  // namespace nbdcage::filters::stats
