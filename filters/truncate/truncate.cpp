#include "filters/truncate/truncate.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "filters/params.h"

namespace nbdcage::filters::truncate {

uint64_t Sizing::apply(uint64_t real) const {
  uint64_t size = fixed ? truncate : real;
  if (roundUp) size = size % roundUp ? std::min<uint64_t>(UINT64_MAX / 2, size + (roundUp - size % roundUp)) : size;
  if (roundDown) size -= size % roundDown;
  return size;
}

namespace {

bool allZero(const uint8_t* p, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

class Stage final : public chain::ChangedInfoStage, private chain::Completer {
 public:
  Stage(chain::Next& next, uint64_t size) : ChangedInfoStage(next), real_(next.info().size) {
    info_.size = size;
  }

  void submit(const chain::Io& io) override {
    uint64_t end = io.offset + io.count;
    if (end <= real_) return next().submit(io);  // all inside the plugin's disk
    uint64_t inside = io.offset >= real_ ? 0 : real_ - io.offset;
    const uint8_t* tail = io.slot.buf + inside;
    uint64_t tailLen = io.count - inside;
    if (io.op == ipc::Op::kWrite && !allZero(tail, tailLen)) return io.done->complete(io, ENOSPC, 0);
    if (inside == 0 || io.op == ipc::Op::kFlush) return finishTail(io);
    up_[io.slot.tag] = io;
    chain::Io down = io;
    down.count = static_cast<uint32_t>(inside);
    down.done = this;
    next().submit(down);
  }

 private:
  // Answers the part past the plugin's end (all of `io` if it starts there).
  void finishTail(const chain::Io& io, uint32_t extentsBelow = 0) {
    uint64_t inside = io.offset >= real_ ? 0 : real_ - io.offset;
    uint32_t extents = 0;
    if (io.op == ipc::Op::kRead) {
      std::memset(io.slot.buf + inside, 0, io.count - inside);
    } else if (io.op == ipc::Op::kExtents) {
      size_t room = io.slot.bufLen / sizeof(ipc::ExtentEntry);
      extents = extentsBelow;
      if (extents < room) {
        ipc::ExtentEntry hole{io.count - inside, 3 /* hole, zero */, 0};
        std::memcpy(io.slot.buf + extents * sizeof hole, &hole, sizeof hole);
        ++extents;
      }
    }
    io.done->complete(io, 0, extents);
  }

  void complete(const chain::Io& io, int error, uint32_t extents) override {
    chain::Io up = up_[io.slot.tag];
    if (error != 0) return up.done->complete(up, error, 0);
    // Extents below may cover less than asked: then the answer stops there.
    if (up.op == ipc::Op::kExtents) {
      uint64_t covered = 0;
      for (uint32_t i = 0; i < extents; ++i) {
        ipc::ExtentEntry e;
        std::memcpy(&e, up.slot.buf + i * sizeof e, sizeof e);
        covered += e.length;
      }
      if (covered < io.count) return up.done->complete(up, 0, extents);
    }
    finishTail(up, extents);
  }

  const uint64_t real_;
  chain::Io up_[ipc::kRingEntries] = {};
};

class Truncate final : public chain::Filter {
 public:
  explicit Truncate(const Sizing& s) : sizing_(s) {}
  const char* name() const override { return "truncate"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, sizing_.apply(next.info().size));
  }

 private:
  const Sizing sizing_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Sizing s;
  for (const auto& [key, value] : params) {
    uint64_t n = parseSize(key, value);
    if (key == "truncate") s.truncate = n, s.fixed = true;
    else if (n == 0) throw std::runtime_error(key + " must be at least 1, not '" + value + "'");
    else (key == "round-up" ? s.roundUp : s.roundDown) = n;
  }
  return std::make_unique<Truncate>(s);
}

}  // namespace nbdcage::filters::truncate
