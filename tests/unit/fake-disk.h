// Test doubles for chain stages: a bottom stage over a byte vector whose
// requests complete only when the test says so, and a completer that
// records what came back.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <deque>
#include <optional>
#include <vector>

#include "frontend/chain/next.h"

namespace nbdcage::chain::testing {

// A bottom stage over a byte vector: requests complete when run() is
// called, as the host's do when the event loop drains the ring.
class FakeDisk final : public Next {
 public:
  explicit FakeDisk(size_t size) : disk(size) {
    info_.size = size;
    info_.canWrite = info_.canFlush = info_.canZero = info_.canExtents = true;
  }
  const ExportInfo& info() const override { return info_; }
  std::optional<Slot> reserve(uint32_t bufLen) override {
    for (uint32_t t = 0; t < held.size(); ++t) {
      if (held[t]) continue;
      held[t] = true;
      buffers[t].assign(bufLen, 0);
      return Slot{t, 0, bufLen, buffers[t].data()};
    }
    return std::nullopt;
  }
  void release(const Slot& s) override { held[s.tag] = false; }
  void submit(const Io& io) override { queue.push_back(io); }
  // Completes everything queued, in order (and what that submits).
  void run(int error = 0, uint32_t extents = 1) {
    while (!queue.empty()) runOne(0, error, extents);
  }
  // Completes the queued request at `index` only: requests below may
  // finish in any order.
  void runOne(size_t index, int error = 0, uint32_t extents = 1) {
    REQUIRE(index < queue.size());
    Io io = queue[index];
    queue.erase(queue.begin() + static_cast<long>(index));
    seen.push_back(io);
    if (error == 0 && io.op == ipc::Op::kRead) std::memcpy(io.slot.buf, disk.data() + io.offset, io.count);
    if (error == 0 && io.op == ipc::Op::kWrite) std::memcpy(disk.data() + io.offset, io.slot.buf, io.count);
    io.done->complete(io, error, io.op == ipc::Op::kExtents ? extents : 0);
  }

  ExportInfo info_;
  std::vector<uint8_t> disk;
  std::vector<bool> held = std::vector<bool>(8);
  std::vector<uint8_t> buffers[8];
  std::deque<Io> queue;
  std::vector<Io> seen;
};

struct Result {
  bool done = false;
  int error = -1;
  uint32_t extents = 0;
  Io io{};
};

class Recorder final : public Completer {
 public:
  void complete(const Io& io, int error, uint32_t extents) override {
    CHECK_FALSE(results[io.slot.tag].done);  // exactly once
    results[io.slot.tag] = Result{true, error, extents, io};
  }
  Result results[8];
};

// A new request on a free slot; its tag's earlier result is forgotten.
inline Io request(Next& n, Recorder& rec, ipc::Op op, uint64_t offset, uint32_t count, uint16_t flags = 0) {
  auto slot = n.reserve(op == ipc::Op::kExtents ? 64 : count);
  REQUIRE(slot);
  rec.results[slot->tag] = Result{};
  return Io{op, flags, offset, count, *slot, &rec};
}

}  // namespace nbdcage::chain::testing
