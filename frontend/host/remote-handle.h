// The frontend's end of one plugin handle: the last stage of the chain.
// It owns the shared region, both doorbells and the in-flight tags, and is
// driven by its connection's event loop (one thread; no locks):
//
//   reserve(len) -> Slot (tag + buffer)      drainCompletions(max):
//   fill the buffer (a write's payload)        pop, validate the tag,
//   submit(io) -> submit ring                   io.done->complete(io, ...)
//                                             release(slot) once replied
//
// A tag names an in-flight request; there are never more tags than ring
// entries, so neither ring can overflow unless the host corrupts it.  The
// host is untrusted: a completion naming a tag that is not in flight, or a
// corrupted ring, breaks the handle exactly as the host's death does: every
// request still in flight is completed with EIO.
#pragma once

#include <kj/io.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "frontend/chain/bottom.h"
#include "frontend/host/buffer-allocator.h"
#include "ipc/layout.h"
#include "ipc/ring.h"
#include "ipc/shm-region.h"

namespace nbdcage::frontend {

using chain::ExportInfo;
using chain::Slot;

// The rings and doorbells, made before the host is asked to open a handle.
struct RingResources {
  ipc::ShmRegion region;
  ipc::Doorbell submitBell;           // we ring it
  ipc::DoorbellWaiter completeBell;   // we wait on it (non-blocking)
  kj::AutoCloseFd hostSubmitEnd;      // the ends handed to the host
  kj::AutoCloseFd hostCompleteEnd;
  static RingResources create(uint64_t dataSize);
};

class RemoteHandle final : public chain::Bottom {
 public:
  // The data area: every tag owns a home slice for requests up to
  // kHomeSlice bytes (the common case needs no allocation); larger buffers
  // come from a shared area big enough for two 32 MiB requests.
  static constexpr uint64_t kHomeSlice = 128 * 1024;
  static constexpr uint64_t kLargeAreaStart = ipc::kRingEntries * kHomeSlice;
  static constexpr uint64_t kDataAreaSize = kLargeAreaStart + (64ull << 20);

  // `hostDeath` becomes readable when the host process is gone (a pidfd;
  // SIGKILL goes through it when a request misses its deadline).
  // `requestTimeout` (0: none) is how long a request may stay with the
  // host; `plugin` names it in the log.  `onClose` runs on destruction (it
  // closes the host-side handle).
  RemoteHandle(RingResources rings, ExportInfo info, kj::AutoCloseFd hostDeath, std::chrono::milliseconds requestTimeout,
               std::string plugin, std::function<void()> onClose);
  ~RemoteHandle() override;
  RemoteHandle(const RemoteHandle&) = delete;
  RemoteHandle& operator=(const RemoteHandle&) = delete;

  const ExportInfo& info() const override { return info_; }
  std::optional<Slot> reserve(uint32_t bufLen) override;
  void release(const Slot& slot) override;
  // Hands the request to the host; if the handle is broken, fails it with
  // EIO at once.
  void submit(const chain::Io& io) override;
  // chain::Bottom: the completion ring, its doorbell and the host's pidfd.
  uint32_t inFlight() const override { return submittedCount_; }
  void drainCompletions(size_t max) override;
  // Waits on the completion doorbell (while requests are in flight and
  // `completions`), the host's pidfd, and the next timed duty.
  bool prepareWait(bool completions, Wait& w) override;
  void wake(const Wait& w) override;
  // The parts of wake(), for tests: milliseconds until the next timed duty
  // (the oldest request's deadline, or giving idle memory back; 0: now;
  // -1: none), and doing what is due.
  int msUntilDeadline() const;
  void enforceDeadlines();
  // Gives the large area's pages back once no large buffer has been held
  // for kIdleRelease, and the home slices' once no buffer at all has been
  // (enforceDeadlines() calls it).
  void releaseIdleMemory();
  static constexpr std::chrono::milliseconds kIdleRelease{1000};
  // The host died: delivers what it completed before, then fails the rest.
  void hostDied();
  bool broken() const override { return broken_; }
  void retire() override;

 private:
  void breakHandle(const char* why);
  void hostViolated(const char* why);
  void killHost() const;
  void failSubmitted();
  bool deliver(const ipc::CompleteDesc& c);
  void finish(uint32_t tag, int error, uint32_t extents);

  RingResources rings_;
  ExportInfo info_;
  kj::AutoCloseFd hostDeath_;
  std::chrono::milliseconds timeout_;
  std::string plugin_;
  std::function<void()> onClose_;
  ipc::Region* shared_;
  uint8_t* data_;
  ipc::RingProducer<ipc::SubmitDesc> submit_;
  ipc::RingConsumer<ipc::CompleteDesc> complete_;

  BufferAllocator allocator_;
  std::array<Slot, ipc::kRingEntries> slots_{};
  std::array<chain::Io, ipc::kRingEntries> submitted_{};
  std::array<std::chrono::steady_clock::time_point, ipc::kRingEntries> submittedAt_{};
  std::optional<std::chrono::steady_clock::time_point> largeUsedAt_;  // last large release; unset: nothing to give back
  std::optional<std::chrono::steady_clock::time_point> homeUsedAt_;   // the same for the home slices
  std::array<uint8_t, ipc::kRingEntries> state_{};  // kFree, kReserved, kSubmitted
  std::array<uint32_t, ipc::kRingEntries> freeStack_{};
  uint32_t freeTags_ = ipc::kRingEntries;
  uint32_t submittedCount_ = 0;
  bool broken_ = false;
  int bellAt_ = -1, deathAt_ = -1;  // where prepareWait put them in its Wait
};

}  // namespace nbdcage::frontend
