// Single-producer single-consumer descriptor rings across a process
// boundary, with an io_uring-style NEED_WAKEUP handshake:
//
//   producer                               consumer
//   --------                               --------
//   slots[tail] = d                        sleeping = 1
//   tail.store(tail + 1, release)          fence(seq_cst)
//   fence(seq_cst)                         if ring non-empty: sleeping = 0, go on
//   if sleeping: clear it, ring the bell   else block on the doorbell
//
// The two fences order "publish, then look" against "announce, then look",
// so at least one side sees the other: a request is never stranded while
// the consumer sleeps, and a busy ring moves without any syscall.
//
// Each side keeps its own index privately and never trusts the copy in
// shared memory that the peer writes: a peer that corrupts the indices makes
// the ring report kCorrupt, and the caller drops that peer.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#include "ipc/layout.h"

namespace nbdcage::ipc {

enum class RingStatus { kOk, kEmpty, kFull, kCorrupt };

template <typename Desc>
class RingProducer {
 public:
  // Takes over a ring whose indices are both `start` (normally 0).
  explicit RingProducer(RingShared<Desc>& ring) : ring_(ring), tail_(ring.tail.load(std::memory_order_relaxed)) {}

  RingStatus push(const Desc& desc) {
    uint32_t head = ring_.head.load(std::memory_order_acquire);
    uint32_t used = tail_ - head;
    if (used > kRingEntries) return RingStatus::kCorrupt;
    if (used == kRingEntries) return RingStatus::kFull;
    std::memcpy(&ring_.slots[tail_ % kRingEntries], &desc, sizeof desc);
    ++tail_;
    ring_.tail.store(tail_, std::memory_order_release);
    return RingStatus::kOk;
  }

  // After one or more pushes: must the caller ring the consumer's doorbell?
  // Taking the flag means only the first push after the consumer fell
  // asleep rings; the pushes that follow while it is still waking up do
  // not (each ring is a system call).
  bool consumerNeedsWakeup() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ring_.consumerSleeping.load(std::memory_order_relaxed) == 0) return false;
    return ring_.consumerSleeping.exchange(0, std::memory_order_acq_rel) != 0;
  }

 private:
  RingShared<Desc>& ring_;
  uint32_t tail_;
};

template <typename Desc>
class RingConsumer {
 public:
  explicit RingConsumer(RingShared<Desc>& ring) : ring_(ring), head_(ring.head.load(std::memory_order_relaxed)) {}

  // Copies the next descriptor out of shared memory exactly once.
  RingStatus pop(Desc& out) {
    uint32_t tail = ring_.tail.load(std::memory_order_acquire);
    uint32_t avail = tail - head_;
    if (avail == 0) return RingStatus::kEmpty;
    if (avail > kRingEntries) return RingStatus::kCorrupt;
    std::memcpy(&out, &ring_.slots[head_ % kRingEntries], sizeof out);
    ++head_;
    ring_.head.store(head_, std::memory_order_release);
    return RingStatus::kOk;
  }

  // Descriptors published but not yet popped (a hint: the producer may be
  // adding more).
  bool pending() const { return ring_.tail.load(std::memory_order_acquire) != head_; }

  // Announces that the consumer is about to block on its doorbell.  Returns
  // false (and withdraws the announcement) when work arrived meanwhile.
  bool prepareToSleep() {
    ring_.consumerSleeping.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ring_.tail.load(std::memory_order_relaxed) != head_) {
      ring_.consumerSleeping.store(0, std::memory_order_relaxed);
      return false;
    }
    return true;
  }

  void awake() { ring_.consumerSleeping.store(0, std::memory_order_relaxed); }

 private:
  RingShared<Desc>& ring_;
  uint32_t head_;
};

}  // namespace nbdcage::ipc
