// An in-process chain::Bottom over a small RAM disk, for the fuzz target:
// the whole frontend (handshake, transmission, chain) without a plugin host.
// Requests complete at once but are delivered only from drainCompletions(),
// as the host's are.  It offers every capability, so every command is
// reachable.
#pragma once

#include <sys/eventfd.h>

#include <kj/debug.h>
#include <kj/io.h>

#include <array>
#include <cstring>
#include <deque>
#include <vector>

#include "frontend/chain/bottom.h"

namespace nbdcage::fuzz {

class MemoryBottom final : public chain::Bottom {
 public:
  static constexpr uint32_t kSize = 1 << 20;
  static constexpr uint32_t kMaxBuffer = 64 * 1024;

  MemoryBottom() : disk_(kSize), death_(eventfd(0, EFD_CLOEXEC)) {
    info_.size = kSize;
    info_.canWrite = info_.canFlush = info_.canTrim = info_.canZero = true;
    info_.canMultiConn = info_.canExtents = info_.canFastZero = true;
    info_.canFua = 1;
    info_.canCache = 1;
    info_.blockMin = 1;
    info_.blockPreferred = 4096;
    info_.blockMax = kMaxBuffer;
    info_.description = "fuzz";
  }

  const chain::ExportInfo& info() const override { return info_; }

  std::optional<chain::Slot> reserve(uint32_t bufLen) override {
    if (bufLen > kMaxBuffer) return std::nullopt;
    for (uint32_t t = 0; t < ipc::kRingEntries; ++t) {
      if (held_[t]) continue;
      held_[t] = true;
      buffers_[t].resize(kMaxBuffer);
      return chain::Slot{t, 0, bufLen, buffers_[t].data()};
    }
    return std::nullopt;
  }

  void release(const chain::Slot& slot) override {
    KJ_ASSERT(held_[slot.tag]);
    held_[slot.tag] = false;
  }

  void submit(const chain::Io& io) override { queue_.push_back(io); }

  void drainCompletions(size_t max) override {
    for (size_t n = 0; n < max && !queue_.empty(); ++n) {
      chain::Io io = queue_.front();
      queue_.pop_front();
      uint32_t extents = 0;
      int error = perform(io, extents);
      io.done->complete(io, error, extents);
    }
  }

  uint32_t inFlight() const override { return static_cast<uint32_t>(queue_.size()); }
  // Completions are waiting as soon as anything was submitted; otherwise
  // the loop sleeps on a descriptor that never becomes readable.
  bool prepareWait(bool completions, Wait& w) override {
    if (completions && !queue_.empty()) return false;
    w.count = 1;
    w.fds[0] = {death_.get(), POLLIN, 0};
    w.timeoutMs = -1;
    return true;
  }
  void wake(const Wait&) override {}
  bool broken() const override { return false; }
  void retire() override {}

 private:
  int perform(const chain::Io& io, uint32_t& extents) {
    uint8_t* at = disk_.data() + io.offset;
    switch (io.op) {
      case ipc::Op::kRead: std::memcpy(io.slot.buf, at, io.count); return 0;
      case ipc::Op::kWrite: std::memcpy(at, io.slot.buf, io.count); return 0;
      case ipc::Op::kTrim:
      case ipc::Op::kZero: std::memset(at, 0, io.count); return 0;
      case ipc::Op::kExtents: {
        // Two extents (data, then a hole) when the range allows: replies
        // with more than one descriptor get exercised.
        ipc::ExtentEntry e[2] = {{io.count / 2 + 1, 0, 0}, {io.count, 3, 0}};
        extents = io.count > 1 ? 2 : 1;
        std::memcpy(io.slot.buf, e, extents * sizeof e[0]);
        return 0;
      }
      case ipc::Op::kFlush:
      case ipc::Op::kCache: return 0;
    }
    return EIO;
  }

  chain::ExportInfo info_;
  std::vector<uint8_t> disk_;
  std::array<std::vector<uint8_t>, ipc::kRingEntries> buffers_;
  std::array<bool, ipc::kRingEntries> held_{};
  std::deque<chain::Io> queue_;
  kj::AutoCloseFd death_;  // never readable
};

}  // namespace nbdcage::fuzz
