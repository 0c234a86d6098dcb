#include <doctest/doctest.h>

#include <cstring>

#include "filters/readahead/readahead.h"
#include "frontend/chain/boundary.h"
#include "tests/unit/fake-disk.h"

using namespace nbdcage;
using namespace nbdcage::chain;
using namespace nbdcage::chain::testing;

namespace {

// The chain a connection would have: client -> Boundary -> readahead -> Boundary -> disk.
struct Chain {
  FakeDisk disk{1 << 20};
  Boundary low{disk, "filter readahead"};
  kj::Own<Next> stage = filters::readahead::openStage(low);
  Boundary top{*stage, "the client"};
  Recorder rec;

  Chain() {
    for (size_t i = 0; i < disk.disk.size(); ++i) disk.disk[i] = static_cast<uint8_t>(i * 7 + i / 4096);
  }
  ~Chain() { disk.run(); }  // as a connection ends: nothing left in flight
  // A client read; returns its tag.
  uint32_t read(uint64_t offset, uint32_t count) {
    Io io = request(top, rec, ipc::Op::kRead, offset, count);
    top.submit(io);
    return io.slot.tag;
  }
  bool answered(uint32_t tag, uint64_t offset, uint32_t count) {
    const Result& r = rec.results[tag];
    return r.done && r.error == 0 && std::memcmp(r.io.slot.buf, disk.disk.data() + offset, count) == 0;
  }
  // Two sequential reads: the second starts the prefetch of [8K, 72K),
  // which stays below (only the client's own reads complete).
  void startPrefetch() {
    read(0, 4096);
    disk.run();
    read(4096, 4096);
    disk.runOne(0);
  }
  size_t readsBelow() const {
    size_t n = 0;
    for (const auto& io : disk.seen) n += io.op == ipc::Op::kRead;
    return n;
  }
};

}  // namespace

TEST_CASE("readahead: sequential reads are answered from a window read ahead in one request") {
  Chain c;
  uint32_t t0 = c.read(0, 4096);
  c.disk.run();
  CHECK(c.answered(t0, 0, 4096));
  c.top.release(c.rec.results[t0].io.slot);
  uint32_t t1 = c.read(4096, 4096);  // continues the sequence: prefetch [8K, 8K + 64K)
  REQUIRE(c.disk.queue.size() == 2);
  CHECK(c.disk.queue[1].offset == 8192);
  CHECK(c.disk.queue[1].count == 64 * 1024);
  c.disk.run();
  CHECK(c.answered(t1, 4096, 4096));
  c.top.release(c.rec.results[t1].io.slot);
  size_t below = c.readsBelow();
  for (uint64_t off = 8192; off < 8192 + 65536; off += 4096) {
    uint32_t t = c.read(off, 4096);
    CHECK(c.answered(t, off, 4096));  // at once, from memory
    c.top.release(c.rec.results[t].io.slot);
  }
  CHECK(c.readsBelow() == below);
  // Using the window up fetched the next one, twice as big.
  REQUIRE(c.disk.queue.size() == 1);
  CHECK(c.disk.queue[0].offset == 8192 + 65536);
  CHECK(c.disk.queue[0].count == 128 * 1024);
  c.disk.run();  // a stage ends only with nothing of its own in flight
}

TEST_CASE("readahead: a read that falls in a prefetch still below waits for it") {
  Chain c;
  c.startPrefetch();
  uint32_t t = c.read(8192, 4096);
  CHECK_FALSE(c.rec.results[t].done);
  c.disk.run();
  CHECK(c.answered(t, 8192, 4096));
}

TEST_CASE("readahead: a failed prefetch sends the waiting reads down") {
  Chain c;
  c.startPrefetch();
  uint32_t t = c.read(8192, 4096);
  c.disk.runOne(0, EIO);  // the prefetch fails
  REQUIRE(c.disk.queue.size() == 1);  // the waiting read, passed down
  c.disk.run();
  CHECK(c.answered(t, 8192, 4096));
}

TEST_CASE("readahead: a write into the window is never hidden by it") {
  Chain c;
  c.read(0, 4096);
  c.disk.run();
  c.read(4096, 4096);
  c.disk.run();  // window [8K, 72K) is valid
  Io w = request(c.top, c.rec, ipc::Op::kWrite, 12288, 4096);
  std::memset(w.slot.buf, 0xab, 4096);
  c.top.submit(w);
  c.disk.run();
  c.top.release(w.slot);
  uint32_t t = c.read(12288, 4096);
  c.disk.run();
  CHECK(c.answered(t, 12288, 4096));
  CHECK(c.rec.results[t].io.slot.buf[0] == 0xab);
}

TEST_CASE("readahead: a prefetch that overtook a write below is not used once the write completes") {
  Chain c;
  c.read(0, 4096);
  c.disk.run();
  Io w = request(c.top, c.rec, ipc::Op::kWrite, 16384, 4096);  // still below while...
  std::memset(w.slot.buf, 0xcd, 4096);
  c.top.submit(w);
  c.read(4096, 4096);  // ...the prefetch of [8K, 72K) is sent
  REQUIRE(c.disk.queue.size() == 3);
  c.disk.runOne(2);  // the prefetch runs first and reads the old data
  c.disk.run();      // then the write and the client's read
  REQUIRE(c.rec.results[w.slot.tag].done);
  c.top.release(w.slot);
  uint32_t t = c.read(16384, 4096);
  c.disk.run();
  CHECK(c.rec.results[t].io.slot.buf[0] == 0xcd);
}

TEST_CASE("readahead: the export no longer promises multi-conn consistency") {
  Chain c;
  c.disk.info_.canMultiConn = true;
  auto stage = filters::readahead::openStage(c.low);
  CHECK_FALSE(stage->info().canMultiConn);
  CHECK(stage->info().size == c.disk.info_.size);
}

TEST_CASE("readahead: random reads pass straight through") {
  Chain c;
  for (uint64_t off : {65536u, 4096u, 524288u, 8192u}) {
    uint32_t t = c.read(off, 4096);
    c.disk.run();
    CHECK(c.answered(t, off, 4096));
    c.top.release(c.rec.results[t].io.slot);
  }
  CHECK(c.readsBelow() == 4);  // no prefetch
}
