#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include "frontend/chain/boundary.h"
#include "frontend/chain/filter.h"
#include "tests/unit/fake-disk.h"

using namespace nbdcage;
using namespace nbdcage::chain;

namespace {

using namespace nbdcage::chain::testing;

// A filter that changes only reads: it adds 1 to every byte read.  It has
// to see the completion, so it names itself as the completer.
class PlusOne final : public FilterStage, private Completer {
 public:
  using FilterStage::FilterStage;
  void submit(const Io& io) override {
    if (io.op != ipc::Op::kRead) return FilterStage::submit(io);
    up_[io.slot.tag] = io.done;
    Io down = io;
    down.done = this;
    next().submit(down);
  }

 private:
  void complete(const Io& io, int error, uint32_t extents) override {
    for (uint32_t i = 0; i < io.count; ++i) io.slot.buf[i]++;
    Io up = io;
    up.done = up_[io.slot.tag];
    up.done->complete(up, error, extents);
  }
  Completer* up_[4] = {};
};

}  // namespace

TEST_CASE("a stage that overrides nothing passes requests, buffers and results through") {
  FakeDisk disk(4096);
  Boundary low(disk, "filter x");
  FilterStage stage(low);
  Boundary top(stage, "the client");
  Recorder rec;
  CHECK(top.info().size == 4096);

  Io w = request(top, rec, ipc::Op::kWrite, 512, 4);
  std::memcpy(w.slot.buf, "abcd", 4);
  top.submit(w);
  CHECK_FALSE(rec.results[w.slot.tag].done);  // asynchronous
  disk.run();
  CHECK(rec.results[w.slot.tag].error == 0);
  CHECK(std::memcmp(disk.disk.data() + 512, "abcd", 4) == 0);
  top.release(w.slot);

  Io r = request(top, rec, ipc::Op::kRead, 512, 4);
  top.submit(r);
  disk.run();
  CHECK(std::memcmp(r.slot.buf, "abcd", 4) == 0);  // the same shared buffer: no copy
}

TEST_CASE("a filter that overrides only reads changes reads and nothing else") {
  FakeDisk disk(4096);
  Boundary low(disk, "filter plusone");
  PlusOne stage(low);
  Boundary top(stage, "the client");
  Recorder rec;
  disk.disk[0] = 'a';
  Io r = request(top, rec, ipc::Op::kRead, 0, 1);
  top.submit(r);
  disk.run();
  CHECK(r.slot.buf[0] == 'b');
  CHECK(rec.results[r.slot.tag].io.done == &rec);  // the caller gets its own Io back
  Io w = request(top, rec, ipc::Op::kWrite, 1, 1);
  w.slot.buf[0] = 'x';
  top.submit(w);
  disk.run();
  CHECK(disk.disk[1] == 'x');
}

TEST_CASE("the boundary refuses requests the stage below cannot take, and never passes them on") {
  FakeDisk disk(4096);
  Boundary b(disk, "filter broken");
  Recorder rec;
  struct Case {
    ipc::Op op;
    uint64_t offset;
    uint32_t count;
    uint16_t flags;
    int error;
  } cases[] = {
      {ipc::Op::kRead, 4095, 2, 0, EINVAL},                  // past the end
      {ipc::Op::kRead, ~0ull - 1, 4, 0, EINVAL},             // wraps around
      {ipc::Op::kWrite, 0, 8, ipc::kFlagFua, EINVAL},        // FUA the export does not offer
      {ipc::Op::kTrim, 0, 8, 0, EINVAL},                     // trim it does not support
      {ipc::Op::kZero, 0, 8, ipc::kFlagFastZero, EINVAL},    // fast zero it does not support
      {ipc::Op::kRead, 0, 8, ipc::kFlagReqOne, EINVAL},      // a flag for another operation
      {ipc::Op::kFlush, 0, 8, 0, EINVAL},                    // flush with a range
      {static_cast<ipc::Op>(2), 0, 8, 0, EINVAL},            // no such operation
  };
  for (const auto& c : cases) {
    CAPTURE(static_cast<int>(c.op));
    Io io = request(b, rec, ipc::Op::kRead, 0, 8);
    io.op = c.op;
    io.offset = c.offset;
    io.count = c.count;
    io.flags = c.flags;
    b.submit(io);
    REQUIRE(rec.results[io.slot.tag].done);  // at once
    CHECK(rec.results[io.slot.tag].error == c.error);
    b.release(io.slot);
  }
  CHECK(disk.queue.empty());

  Io big = request(b, rec, ipc::Op::kRead, 0, 8);
  big.count = 16;  // more than its buffer holds
  b.submit(big);
  CHECK(rec.results[big.slot.tag].error == EINVAL);
  b.release(big.slot);

  disk.info_.canWrite = false;
  Io w = request(b, rec, ipc::Op::kWrite, 0, 8);
  b.submit(w);
  CHECK(rec.results[w.slot.tag].error == EROFS);
  CHECK(disk.queue.empty());
}

TEST_CASE("the boundary turns a result that is not an errno into EIO, and empty extents into EIO") {
  FakeDisk disk(4096);
  Boundary b(disk, "the client");
  Recorder rec;
  Io r = request(b, rec, ipc::Op::kRead, 0, 8);
  b.submit(r);
  disk.run(-5);
  CHECK(rec.results[r.slot.tag].error == EIO);
  b.release(r.slot);

  // ... except the plugin's "drop the client now", which goes up as it is.
  Io d = request(b, rec, ipc::Op::kRead, 0, 8);
  b.submit(d);
  disk.run(nbdcage::chain::kDisconnectNow);
  CHECK(rec.results[d.slot.tag].error == nbdcage::chain::kDisconnectNow);
  b.release(d.slot);

  Io e = request(b, rec, ipc::Op::kExtents, 0, 4096);
  b.submit(e);
  disk.run(0, 0);
  CHECK(rec.results[e.slot.tag].error == EIO);
  b.release(e.slot);

  Io ok = request(b, rec, ipc::Op::kExtents, 0, 4096);
  b.submit(ok);
  disk.run(0, 2);
  CHECK(rec.results[ok.slot.tag].error == 0);
  CHECK(rec.results[ok.slot.tag].extents == 2);
}

TEST_CASE("the stage above gets back exactly the request it sent, whatever the stages below changed") {
  FakeDisk disk(4096);
  Boundary b(disk, "the client");
  Recorder rec;
  Io r = request(b, rec, ipc::Op::kRead, 100, 8);
  b.submit(r);
  disk.queue.front().offset = 0;  // a stage below rewrote its copy
  disk.run();
  CHECK(rec.results[r.slot.tag].io.offset == 100);
  CHECK(rec.results[r.slot.tag].io.done == &rec);
}

TEST_CASE("releasing a slot that is still in flight is a bug the boundary catches") {
  FakeDisk disk(4096);
  Boundary b(disk, "the client");
  Recorder rec;
  Io r = request(b, rec, ipc::Op::kRead, 0, 8);
  b.submit(r);
  CHECK_THROWS(b.release(r.slot));
  disk.run();
  CHECK_NOTHROW(b.release(r.slot));
}
