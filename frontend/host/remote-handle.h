// The frontend's end of one plugin handle: the last stage of the chain.
// It owns the shared region, both doorbells and the in-flight tags.
//
//   reader thread                       completer thread
//   -------------                       ----------------
//   reserve(len) -> Slot (tag+buffer)   waitCompletions(fn):
//   fill buffer (writes)                  poll(completeBell, hostDeath, stop)
//   submit(slot, op, ...) -> ring         pop, validate tag, fn(slot, error)
//                                         release(slot)
//
// A tag names an in-flight request; there are never more tags than ring
// entries, so neither ring can overflow unless the host corrupts it.  The
// host is untrusted: a completion naming a tag that is not in flight, or a
// corrupted ring, marks the handle broken, exactly as if the host had died:
// every request still in flight is completed with EIO.
#pragma once

#include <kj/io.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "frontend/host/buffer-allocator.h"
#include "ipc/layout.h"
#include "ipc/ring.h"
#include "ipc/shm-region.h"

namespace nbdcage::frontend {

// What the plugin said about the export, validated.
struct ExportInfo {
  uint64_t size = 0;
  bool canWrite = false, canFlush = false, isRotational = false, canTrim = false, canZero = false;
  bool canMultiConn = false, canExtents = false, canFastZero = false;
  uint8_t canFua = 0, canCache = 0;
  uint32_t blockMin = 0, blockPreferred = 0, blockMax = 0;  // 0: no constraints
  std::string description;
};

struct Slot {
  uint32_t tag;
  uint64_t bufOffset;
  uint32_t bufLen;
  uint8_t* buf;
};

// The rings and doorbells, made before the host is asked to open a handle.
struct RingResources {
  ipc::ShmRegion region;
  ipc::Doorbell submitBell;
  ipc::Doorbell completeBell;
  static RingResources create(uint64_t dataSize);
};

class RemoteHandle {
 public:
  using CompletionFn = std::function<void(const Slot&, int error, uint32_t extents)>;

  // The data area: every tag owns a home slice for requests up to
  // kHomeSlice bytes (the common case needs no allocation); larger buffers
  // come from a shared area big enough for two 32 MiB requests.
  static constexpr uint64_t kHomeSlice = 128 * 1024;
  static constexpr uint64_t kLargeAreaStart = ipc::kRingEntries * kHomeSlice;
  static constexpr uint64_t kDataAreaSize = kLargeAreaStart + (64ull << 20);

  // `hostDeath` becomes readable when the host process is gone (a pidfd).
  // `onClose` runs on destruction (it closes the host-side handle).
  RemoteHandle(RingResources rings, ExportInfo info, kj::AutoCloseFd hostDeath, std::function<void()> onClose);
  ~RemoteHandle();
  RemoteHandle(const RemoteHandle&) = delete;
  RemoteHandle& operator=(const RemoteHandle&) = delete;

  const ExportInfo& info() const { return info_; }
  uint64_t maxBuffer() const { return allocator_.size(); }  // the largest request

  // ---- reader side ----
  // Waits for a free tag and `bufLen` bytes; nullopt once the handle is
  // broken or stopping.
  std::optional<Slot> reserve(uint32_t bufLen);
  // Hands the request to the host; false if the handle broke meanwhile (the
  // caller answers EIO and releases the slot).
  bool submit(const Slot& slot, ipc::Op op, uint16_t flags, uint64_t offset, uint32_t count);
  // Waits until every reserved slot was released.
  void waitIdle();

  // ---- completer side ----
  // Runs until stopped or broken: calls fn(slot, error, extents) for each
  // completion (the callee must release(slot), possibly later), and
  // drained() whenever the ring is momentarily empty, so that replies can
  // be sent in batches.  Returns false when the handle is broken (every
  // submitted request has then been passed to fn with EIO) or stopped.
  bool serveCompletions(const CompletionFn& fn, const std::function<void()>& drained);
  void release(const Slot& slot);

  // Makes serveCompletions return and reserve fail.
  void stop();
  bool broken() const;

 private:
  void breakLocked(const char* why);
  void failSubmitted(const CompletionFn& fn);
  bool deliver(const ipc::CompleteDesc& c, const CompletionFn& fn);

  RingResources rings_;
  ExportInfo info_;
  kj::AutoCloseFd hostDeath_;
  std::function<void()> onClose_;
  ipc::Region* shared_;
  uint8_t* data_;
  ipc::RingProducer<ipc::SubmitDesc> submit_;
  ipc::RingConsumer<ipc::CompleteDesc> complete_;
  ipc::Doorbell stopBell_;

  mutable std::mutex lock_;
  std::condition_variable changed_;
  BufferAllocator allocator_;
  std::array<Slot, ipc::kRingEntries> slots_{};
  std::array<uint8_t, ipc::kRingEntries> state_{};  // kFree, kReserved, kSubmitted
  std::array<uint32_t, ipc::kRingEntries> freeStack_{};
  uint32_t freeTags_ = ipc::kRingEntries;
  unsigned waiters_ = 0;  // threads blocked on changed_
  bool broken_ = false;
  bool stopping_ = false;
};

}  // namespace nbdcage::frontend
