#include "filters/evil/evil.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <random>
#include <stdexcept>

#include "filters/params.h"

namespace nbdcage::filters::evil {

namespace {

// SplitMix64: a small, fast generator whose whole state is a seed.
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return (static_cast<double>(next() >> 11) + 1) / 9007199254740992.0; }  // (0, 1]
};

}  // namespace

uint64_t gap(double p, double u) {
  if (p >= 1) return 0;
  if (p <= 0) return UINT64_MAX;
  double g = std::floor(std::log(u) / std::log1p(-p));
  return g >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(g);
}

void stuckBits(uint64_t seed, double probability, uint64_t g, const std::function<void(uint64_t, bool)>& stuck) {
  SplitMix rng{seed ^ (g * 0xd1342543de82ef95ull)};
  rng.next();
  for (uint64_t pos = 0;;) {
    uint64_t step = gap(probability, rng.uniform());
    if (step >= kGranuleBits - pos) return;
    pos += step;
    stuck(g * kGranuleBits + pos, rng.next() & 1);
    if (++pos >= kGranuleBits) return;
  }
}

namespace {

enum class Mode { kCosmicRays, kStuckBits };

struct Settings {
  Mode mode = Mode::kStuckBits;
  double probability = 1e-8;
  double stuckProbability = 1;
  uint64_t seed = 0;
};

void setBit(uint8_t* buf, uint64_t bit, bool value) {
  uint8_t mask = static_cast<uint8_t>(1u << (7 - bit % 8));
  if (value) buf[bit / 8] |= mask;
  else buf[bit / 8] &= static_cast<uint8_t>(~mask);
}

// Reads are corrupted on their way back up.
class Stage final : public chain::FilterStage, private chain::Completer {
 public:
  Stage(chain::Next& next, const Settings& s, uint64_t connectionSeed) : FilterStage(next), s_(s), rng_{connectionSeed} {}
  void submit(const chain::Io& io) override {
    if (io.op != ipc::Op::kRead) return next().submit(io);
    up_[io.slot.tag] = io.done;
    chain::Io down = io;
    down.done = this;
    next().submit(down);
  }

 private:
  void complete(const chain::Io& io, int error, uint32_t extents) override {
    if (error == 0) corrupt(io);
    chain::Io up = io;
    up.done = up_[io.slot.tag];
    up.done->complete(up, error, extents);
  }

  void corrupt(const chain::Io& io) {
    uint64_t first = io.offset * 8, end = (io.offset + io.count) * 8;
    if (s_.mode == Mode::kCosmicRays) {
      for (uint64_t bit = first;;) {
        uint64_t step = gap(s_.probability, rng_.uniform());
        if (step >= end - bit) return;
        bit += step;
        uint64_t at = bit - first;
        io.slot.buf[at / 8] ^= static_cast<uint8_t>(1u << (7 - at % 8));
        if (++bit >= end) return;
      }
    }
    for (uint64_t g = first / kGranuleBits; g <= (end - 1) / kGranuleBits; ++g)
      stuckBits(s_.seed, s_.probability, g, [&](uint64_t bit, bool value) {
        if (bit < first || bit >= end) return;
        if (s_.stuckProbability < 1 && rng_.uniform() > s_.stuckProbability) return;  // read right this time
        setBit(io.slot.buf, bit - first, value);
      });
  }

  const Settings& s_;
  SplitMix rng_;  // this connection's chance: cosmic rays, and when a stuck bit shows
  chain::Completer* up_[ipc::kRingEntries] = {};
};

class Evil final : public chain::Filter {
 public:
  explicit Evil(const Settings& s) : s_(s) {}
  const char* name() const override { return "evil"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, s_, s_.seed + 0x632be59bd9b4e019ull * ++connections_);
  }

 private:
  const Settings s_;
  std::atomic<uint64_t> connections_{0};
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Settings s;
  s.seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  for (const auto& [key, value] : params) {
    if (key == "evil") {
      if (value == "cosmic-rays") s.mode = Mode::kCosmicRays;
      else if (value == "stuck-bits") s.mode = Mode::kStuckBits;
      else if (value == "stuck-wires") throw std::runtime_error("evil=stuck-wires is not supported (cosmic-rays and stuck-bits are)");
      else throw std::runtime_error("evil must be cosmic-rays or stuck-bits, not '" + value + "'");
    } else if (key == "evil-probability") {
      s.probability = parseProbability(key, value);
    } else if (key == "evil-stuck-probability") {
      s.stuckProbability = parseProbability(key, value);
    } else {
      char* end;
      errno = 0;
      unsigned long long n = value.empty() ? 0 : strtoull(value.c_str(), &end, 0);
      if (value.empty() || errno || *end) throw std::runtime_error("evil-seed must be a number, not '" + value + "'");
      s.seed = n;
    }
  }
  return std::make_unique<Evil>(s);
}

}  // namespace nbdcage::filters::evil
