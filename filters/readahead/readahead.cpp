#include "filters/readahead/readahead.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <vector>

namespace nbdcage::filters::readahead {

namespace {

constexpr uint32_t kMinWindow = 64 * 1024;
constexpr uint32_t kMaxWindow = 4 * 1024 * 1024;

bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

// One window of data read ahead, in a buffer of the stage below:
//
//   client reads:   [r0][r1][r2]...          sequential: each starts where the last ended
//   window:                  [ prefetch ........ )   read below in one request
//
// A read that continues the sequence and misses the window is passed down
// and starts a prefetch of the next `size_` bytes; a read inside the window
// is answered from it; a read that falls in a prefetch still in flight
// waits for it.  When a read uses up the window, the next one (twice as
// big, up to kMaxWindow) is fetched.
//
// A write, trim or zero that touches the window throws it away, and a
// prefetch in flight that it touches is not used (the reads waiting for it
// are passed down instead) -- both when it is sent and when it completes:
// a prefetch sent while the write was still below may have read the old
// data, and the client may rely on the write once it has its reply.
class Stage final : public chain::ChangedInfoStage, private chain::Completer {
 public:
  // The window is this connection's alone: another connection's writes do
  // not reach it, so the export must not promise clients that connections
  // see each other's writes (NBD_FLAG_CAN_MULTI_CONN).
  explicit Stage(chain::Next& next) : ChangedInfoStage(next) { info_.canMultiConn = false; }
  ~Stage() override {
    if (slot_) next().release(*slot_);
  }

  // The window's buffer is the stage's to give back: when the stage above
  // finds no room and the window is idle, it goes (a fragmented area must
  // never make a legal request wait for memory only this stage holds).
  std::optional<chain::Slot> reserve(uint32_t bufLen) override {
    auto slot = next().reserve(bufLen);
    if (slot || !slot_ || inFlight_) return slot;  // a prefetch in flight gives its buffer back after
    next().release(*slot_);
    slot_.reset();
    valid_ = false;
    length_ = 0;
    return next().reserve(bufLen);
  }

  void submit(const chain::Io& io) override {
    switch (io.op) {
      case ipc::Op::kRead: return read(io);
      case ipc::Op::kWrite:
      case ipc::Op::kTrim:
      case ipc::Op::kZero: {
        invalidate(io);
        up_[io.slot.tag] = io.done;  // to invalidate again when it completes
        chain::Io down = io;
        down.done = this;
        return next().submit(down);
      }
      default: return next().submit(io);
    }
  }

 private:
  void invalidate(const chain::Io& write) {
    if (!overlaps(write.offset, write.count, offset_, length_)) return;
    valid_ = false;
    if (inFlight_) stale_ = true;
  }

  void read(const chain::Io& io) {
    uint64_t end = io.offset + io.count;
    bool sequential = io.offset == lastEnd_;
    lastEnd_ = end;
    bool inside = io.offset >= offset_ && end <= offset_ + length_;
    if (inside && valid_ && !inFlight_) {
      answerFromWindow(io);
      if (end == offset_ + length_) prefetch(end);  // used up: fetch the next window
      return;
    }
    if (inside && inFlight_ && !stale_) {
      waiting_.push_back(io);
      return;
    }
    next().submit(io);
    if (sequential && !inFlight_) prefetch(end);
  }

  // Reads [offset, offset + size_) below into the window buffer.
  void prefetch(uint64_t offset) {
    const auto& info = next().info();
    if (offset >= info.size) return;
    uint32_t want = size_;
    if (info.blockMax) want = std::min(want, info.blockMax);
    uint32_t length = static_cast<uint32_t>(std::min<uint64_t>(want, info.size - offset));
    if (!slot_ || slot_->bufLen < length) {
      if (slot_) next().release(*slot_);
      slot_ = next().reserve(length);
      if (!slot_) return;  // no buffer free now: no prefetch this time
    }
    offset_ = offset;
    length_ = length;
    valid_ = false;
    stale_ = false;
    inFlight_ = true;
    size_ = std::min(size_ * 2, kMaxWindow);
    next().submit(chain::Io{ipc::Op::kRead, 0, offset, length, *slot_, this});
  }

  void complete(const chain::Io& io, int error, uint32_t extents) override {
    if (io.op != ipc::Op::kRead) {  // one of the client's writes
      invalidate(io);
      chain::Io up = io;
      up.done = up_[io.slot.tag];
      return up.done->complete(up, error, extents);
    }
    prefetched(error);
  }

  // The prefetch is back: answer the reads that waited for it, or pass
  // them down if it failed or a write made it stale.
  void prefetched(int error) {
    inFlight_ = false;
    valid_ = error == 0 && !stale_;
    std::vector<chain::Io> waiting;
    waiting.swap(waiting_);
    for (const auto& io : waiting) {
      if (valid_)
        answerFromWindow(io);
      else
        next().submit(io);
    }
  }

  // `io` lies inside the valid window.
  void answerFromWindow(const chain::Io& io) {
    std::memcpy(io.slot.buf, slot_->buf + (io.offset - offset_), io.count);
    io.done->complete(io, 0, 0);
  }

  std::optional<chain::Slot> slot_;  // the window's buffer, held while the stage lives
  uint64_t offset_ = 0;              // the window: [offset_, offset_ + length_)
  uint32_t length_ = 0;
  bool valid_ = false;     // the buffer holds the window's data
  bool inFlight_ = false;  // a prefetch into it is below
  bool stale_ = false;     // that prefetch was overtaken by a write
  uint32_t size_ = kMinWindow;  // the next prefetch's size
  uint64_t lastEnd_ = ~uint64_t{0};
  std::vector<chain::Io> waiting_;  // reads answered when the prefetch is back
  std::array<chain::Completer*, ipc::kRingEntries> up_{};  // writes' completers, by tag
};

class Readahead final : public chain::Filter {
 public:
  const char* name() const override { return "readahead"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override { return openStage(next); }
};

}  // namespace

kj::Own<chain::Next> openStage(chain::Next& next) { return kj::heap<Stage>(next); }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>&) {
  return std::make_unique<Readahead>();
}

}  // namespace nbdcage::filters::readahead
