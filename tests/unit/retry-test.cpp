// The retry filter: its delays and its check of a reopened export, and
// the chain's reopen under it, with bottoms the test drives: a request
// that fails is sent again on the new opening, in a slot of the new
// opening's memory, and its data reaches the buffer the client holds, which
// is still the old opening's; that memory goes once the last such slot is
// given back.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "filters/registry.h"
#include "filters/retry/retry.h"
#include "frontend/chain/chain.h"
#include "tests/unit/fake-disk.h"

using namespace nbdcage;
using namespace nbdcage::chain;
using nbdcage::chain::testing::Recorder;

namespace {

// A bottom over one shared byte vector (the plugin's disk); requests wait
// until drainCompletions(), and fail with `failWith` while it is set.
class TestBottom final : public Bottom {
 public:
  TestBottom(std::vector<uint8_t>& disk, int& alive, int& failWith) : disk_(disk), alive_(alive), failWith_(failWith) {
    ++alive_;
    info_.size = disk.size();
    info_.canWrite = info_.canFlush = true;
  }
  ~TestBottom() override { --alive_; }
  const ExportInfo& info() const override { return info_; }
  std::optional<Slot> reserve(uint32_t bufLen) override {
    if (retired_) return std::nullopt;
    for (uint32_t t = 0; t < 8; ++t) {
      if (held_[t]) continue;
      held_[t] = true;
      buffers_[t].assign(bufLen, 0);
      return Slot{t, 0, bufLen, buffers_[t].data()};
    }
    return std::nullopt;
  }
  void release(const Slot& s) override { held_[s.tag] = false; }
  void submit(const Io& io) override { queue_.push_back(io); }
  void drainCompletions(size_t) override {
    while (!queue_.empty()) {
      Io io = queue_.front();
      queue_.pop_front();
      int err = retired_ ? EIO : failWith_;
      if (!err && io.op == ipc::Op::kRead) std::memcpy(io.slot.buf, disk_.data() + io.offset, io.count);
      if (!err && io.op == ipc::Op::kWrite) std::memcpy(disk_.data() + io.offset, io.slot.buf, io.count);
      io.done->complete(io, err, 0);
    }
  }
  uint32_t inFlight() const override { return static_cast<uint32_t>(queue_.size()); }
  bool prepareWait(bool, Wait&) override { return queue_.empty(); }
  void wake(const Wait&) override {}
  bool broken() const override { return retired_; }
  void retire() override { retired_ = true; }
  uint8_t* buffer(uint32_t tag) { return buffers_[tag].data(); }

 private:
  std::vector<uint8_t>& disk_;
  int& alive_;
  int& failWith_;
  ExportInfo info_;
  bool held_[8] = {};
  std::vector<uint8_t> buffers_[8];
  std::deque<Io> queue_;
  bool retired_ = false;
};

// Turns the loop the way a connection does, until `until` holds.
template <typename Pred>
void turn(Handle& h, Pred until) {
  for (int i = 0; i < 2000 && !until(); ++i) {
    h.bottom().drainCompletions(64);
    Bottom::Wait w;
    if (h.bottom().prepareWait(true, w)) h.bottom().wake(w);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(until());
}

}  // namespace

TEST_CASE("retry's delays: doubled per reopen, or not") {
  using namespace std::chrono;
  filters::retry::Settings s;
  s.delay = seconds(2);
  CHECK(filters::retry::delayBefore(s, 1) == seconds(2));
  CHECK(filters::retry::delayBefore(s, 3) == seconds(8));
  CHECK(filters::retry::delayBefore(s, 5) == seconds(32));  // about a minute in all by default
  CHECK(filters::retry::delayBefore(s, 1000) <= hours(48));  // bounded, never overflowing
  s.exponential = false;
  CHECK(filters::retry::delayBefore(s, 4) == seconds(2));
  auto parsed = filters::retry::parse({{"retries", "3"}, {"retry-delay", "250ms"}, {"retry-exponential", "no"}});
  CHECK(parsed.retries == 3);
  CHECK(parsed.delay == milliseconds(250));
  CHECK_FALSE(parsed.exponential);
  CHECK_THROWS(filters::retry::parse({{"retries", "1001"}}));
}

TEST_CASE("retry uses a reopened export only if it can take what the client was told") {
  ExportInfo before;
  before.size = 1 << 20;
  before.canWrite = before.canFlush = before.canTrim = true;
  before.canFua = 2;
  ExportInfo same = before;
  CHECK(filters::retry::changed(before, same, false).empty());
  ExportInfo bigger = before;
  bigger.size += 512;
  CHECK(filters::retry::changed(before, bigger, false) == "its size");
  ExportInfo ro = before;
  ro.canWrite = ro.canTrim = false;
  ro.canFua = 0;
  CHECK(filters::retry::changed(before, ro, false) == "it is read-only");
  CHECK(filters::retry::changed(before, ro, true).empty());  // retry-readonly: writes are refused above
  ExportInfo noFlush = before;
  noFlush.canFlush = false;
  CHECK(filters::retry::changed(before, noFlush, true) == "flush");
  ExportInfo blocks = before;
  blocks.blockMin = 4096;
  CHECK(filters::retry::changed(before, blocks, false) == "its block sizes");
  ExportInfo more = before;
  more.canExtents = more.canZero = true;  // gaining is harmless
  CHECK(filters::retry::changed(before, more, false).empty());
}

TEST_CASE("a failed read is sent again on the reopened chain, into the buffer the client holds") {
  std::vector<uint8_t> disk(4096);
  std::memcpy(disk.data() + 512, "data", 4);
  int alive = 0, failWith = EIO, opens = 0;
  std::vector<TestBottom*> made;
  auto open = [&](bool) -> kj::Own<Bottom> {
    ++opens;
    auto b = kj::heap<TestBottom>(disk, alive, failWith);
    made.push_back(b.get());
    return b;
  };
  std::vector<std::unique_ptr<Filter>> filters;
  filters.push_back(filters::make("retry", {"retry-delay=1ms", "retries=2"}));
  filters.push_back(filters::make("nofilter", {}));  // a stage below, rebuilt on each reopen
  Handle h(open(true), open, filters, "", false);
  Recorder rec;

  // Two slots held by the client; only the first is sent, and it fails.
  auto slot = h.top().reserve(4);
  auto other = h.top().reserve(4);
  REQUIRE(slot);
  REQUIRE(other);
  uint8_t* clientBuf = slot->buf;
  CHECK(clientBuf == made[0]->buffer(0));  // zero-copy while nothing failed
  h.top().submit(Io{ipc::Op::kRead, 0, 512, 4, *slot, &rec});
  failWith = EIO;
  h.bottom().drainCompletions(64);  // fails: held for the reopen
  CHECK_FALSE(rec.results[slot->tag].done);
  failWith = 0;
  turn(h, [&] { return rec.results[slot->tag].done; });
  CHECK(opens == 2);
  CHECK(rec.results[slot->tag].error == 0);
  CHECK(std::memcmp(clientBuf, "data", 4) == 0);  // copied into the old opening's memory
  CHECK(alive == 2);                              // kept: the client still holds its slots
  h.top().release(*slot);
  CHECK(alive == 2);
  h.top().release(*other);
  CHECK(alive == 1);  // the last slot of the old opening is back: its memory goes

  // A new slot is the new opening's, zero-copy again.
  auto fresh = h.top().reserve(4);
  REQUIRE(fresh);
  CHECK(fresh->buf == made[1]->buffer(0));
  h.top().release(*fresh);
}

TEST_CASE("a request that keeps failing fails after `retries` reopens, with its own error") {
  std::vector<uint8_t> disk(4096);
  int alive = 0, failWith = ENOSPC, opens = 0;
  auto open = [&](bool) -> kj::Own<Bottom> {
    ++opens;
    return kj::heap<TestBottom>(disk, alive, failWith);
  };
  std::vector<std::unique_ptr<Filter>> filters;
  filters.push_back(filters::make("retry", {"retry-delay=1ms", "retries=2"}));
  Handle h(open(false), open, filters, "", false);
  Recorder rec;
  auto slot = h.top().reserve(4);
  REQUIRE(slot);
  std::memcpy(slot->buf, "abcd", 4);
  h.top().submit(Io{ipc::Op::kWrite, 0, 0, 4, *slot, &rec});
  turn(h, [&] { return rec.results[slot->tag].done; });
  CHECK(rec.results[slot->tag].error == ENOSPC);
  CHECK(opens == 3);  // the first open and two reopens
  CHECK_FALSE(h.bottom().broken());  // a chain that can reopen is never given up on
  h.top().release(*slot);
  CHECK(alive == 1);
}
