// What protect and checkwrite share: a stage that compares what a write,
// zero or trim would leave with what the plugin has, before deciding.  The
// bytes to check are read from below in pieces, into a buffer the stage
// holds for its life (so it never waits for buffers only its connection
// can free); one such request at a time, the others go by.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters {

struct ByteRange {
  uint64_t start, end;  // [start, end)
};

struct ComparePolicy {
  // The ranges of `io` to compare (empty: not this filter's business, it
  // goes down as it is).
  std::function<std::vector<ByteRange>(const chain::Io& io)> ranges;
  int mismatch;          // the error when the bytes differ
  bool passMatching;     // true: a matching request goes down; false: it succeeds here
  bool refuseTrim;       // true: a trim to check fails with `mismatch`; false: it is compared as zeroes
};

class ComparingStage final : public chain::ChangedInfoStage, private chain::Completer {
 public:
  static constexpr uint32_t kBuffer = 128 * 1024;
  // `buf`: up to kBuffer bytes reserved from `next` (the pieces' size),
  // released with the stage.
  ComparingStage(chain::Next& next, chain::Slot buf, ComparePolicy policy);
  ~ComparingStage() override;
  void submit(const chain::Io& io) override;
  // What the stage above is shown (checkwrite: writable over a read-only
  // plugin).
  chain::ExportInfo& info() { return info_; }
  using ChangedInfoStage::info;

 private:
  void startCheck();
  void readPiece();
  void complete(const chain::Io& io, int error, uint32_t extents) override;

  chain::Slot buf_;
  ComparePolicy policy_;
  std::vector<chain::Io> queue_;  // requests to check; the front one is being checked
  std::vector<ByteRange> pieces_;
  size_t piece_ = 0;
};

// Reserves the stage's buffer from `next` (throws if it cannot).
kj::Own<ComparingStage> openComparing(chain::Next& next, ComparePolicy policy, const char* filter);

}  // namespace nbdcage::filters
