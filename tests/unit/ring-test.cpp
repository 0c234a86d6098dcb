#include <doctest/doctest.h>

#include <memory>
#include <thread>

#include "ipc/ring.h"

using namespace nbdcage::ipc;

namespace {
struct Ring {
  std::unique_ptr<RingShared<SubmitDesc>> shared{new RingShared<SubmitDesc>()};
};
SubmitDesc desc(uint32_t tag) { return SubmitDesc{tag, 0, 0, tag * 512ull, 512, 512, 0}; }
}  // namespace

TEST_CASE("descriptors come out in the order they went in") {
  Ring r;
  RingProducer<SubmitDesc> p(*r.shared);
  RingConsumer<SubmitDesc> c(*r.shared);
  SubmitDesc out;
  CHECK(c.pop(out) == RingStatus::kEmpty);
  for (uint32_t i = 0; i < 10; ++i) CHECK(p.push(desc(i)) == RingStatus::kOk);
  for (uint32_t i = 0; i < 10; ++i) {
    REQUIRE(c.pop(out) == RingStatus::kOk);
    CHECK(out.tag == i);
    CHECK(out.offset == i * 512ull);
  }
  CHECK(c.pop(out) == RingStatus::kEmpty);
}

TEST_CASE("a full ring refuses the next push until the consumer pops") {
  Ring r;
  RingProducer<SubmitDesc> p(*r.shared);
  RingConsumer<SubmitDesc> c(*r.shared);
  for (uint32_t i = 0; i < kRingEntries; ++i) REQUIRE(p.push(desc(i)) == RingStatus::kOk);
  CHECK(p.push(desc(999)) == RingStatus::kFull);
  SubmitDesc out;
  REQUIRE(c.pop(out) == RingStatus::kOk);
  CHECK(p.push(desc(999)) == RingStatus::kOk);
}

TEST_CASE("indices wrap around 2^32 without losing entries") {
  Ring r;
  r.shared->head.store(0xfffffff0u);
  r.shared->tail.store(0xfffffff0u);
  RingProducer<SubmitDesc> p(*r.shared);
  RingConsumer<SubmitDesc> c(*r.shared);
  for (uint32_t i = 0; i < 40; ++i) REQUIRE(p.push(desc(i)) == RingStatus::kOk);
  SubmitDesc out;
  for (uint32_t i = 0; i < 40; ++i) {
    REQUIRE(c.pop(out) == RingStatus::kOk);
    CHECK(out.tag == i);
  }
}

TEST_CASE("a peer that corrupts the indices is detected on both sides") {
  Ring r;
  RingProducer<SubmitDesc> p(*r.shared);
  RingConsumer<SubmitDesc> c(*r.shared);
  r.shared->tail.store(kRingEntries + 5);  // the producer claims more than fits
  SubmitDesc out;
  CHECK(c.pop(out) == RingStatus::kCorrupt);
  r.shared->head.store(12345);  // the consumer claims to be ahead of us
  CHECK(p.push(desc(1)) == RingStatus::kCorrupt);
}

TEST_CASE("a consumer about to sleep is told so if work is already there") {
  Ring r;
  RingProducer<SubmitDesc> p(*r.shared);
  RingConsumer<SubmitDesc> c(*r.shared);
  CHECK(c.prepareToSleep());
  CHECK(p.consumerNeedsWakeup());
  CHECK_FALSE(p.consumerNeedsWakeup());  // one ring per sleep, not one per push
  c.awake();
  CHECK_FALSE(p.consumerNeedsWakeup());
  REQUIRE(p.push(desc(1)) == RingStatus::kOk);
  CHECK_FALSE(c.prepareToSleep());  // work arrived: do not sleep
  CHECK_FALSE(p.consumerNeedsWakeup());
}

TEST_CASE("one producer and one consumer thread move a million descriptors intact") {
  Ring r;
  RingProducer<SubmitDesc> p(*r.shared);
  RingConsumer<SubmitDesc> c(*r.shared);
  constexpr uint32_t kCount = 1'000'000;
  std::thread producer([&] {
    for (uint32_t i = 0; i < kCount;)
      if (p.push(desc(i)) == RingStatus::kOk) ++i;
  });
  uint32_t next = 0;
  bool ordered = true;
  SubmitDesc out;
  while (next < kCount) {
    if (c.pop(out) == RingStatus::kOk) {
      ordered = ordered && out.tag == next && out.offset == next * 512ull;
      ++next;
    }
  }
  producer.join();
  CHECK(ordered);
}
