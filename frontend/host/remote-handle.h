// The frontend's end of one plugin handle: the last stage of the chain.
// It owns the shared region, both doorbells and the in-flight tags, and is
// driven by its connection's event loop (one thread; no locks):
//
//   reserve(len) -> Slot (tag + buffer)      drainCompletions(fn):
//   fill the buffer (a write's payload)        pop, validate the tag,
//   submit(slot, op, ...) -> submit ring        fn(slot, error, extents)
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
#include <cstdint>
#include <functional>
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

  // A free tag and `bufLen` bytes of buffer, or nullopt when none is free
  // right now (wait for completions) or the handle is broken.
  std::optional<Slot> reserve(uint32_t bufLen);
  // Hands the request to the host; false if the handle is broken (the
  // caller answers EIO and releases the slot).
  bool submit(const Slot& slot, ipc::Op op, uint16_t flags, uint64_t offset, uint32_t count);
  void release(const Slot& slot);
  // Tags reserved and not yet released.
  uint32_t busyTags() const { return ipc::kRingEntries - freeTags_; }

  // Calls fn for each completion waiting in the ring (at most `max`).
  void drainCompletions(const CompletionFn& fn, size_t max);
  // Before blocking in poll(): announces the sleep to the host.  False if
  // completions are already waiting (do not block).
  bool armDoorbell();
  void disarmDoorbell();
  int doorbellFd() const { return rings_.completeBell.fd(); }
  int hostDeathFd() const { return hostDeath_.get(); }
  void clearDoorbell() { rings_.completeBell.drain(); }
  // The host died: delivers what it completed before, then fails the rest.
  void hostDied(const CompletionFn& fn);
  bool broken() const { return broken_; }

 private:
  void breakHandle(const char* why);
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

  BufferAllocator allocator_;
  std::array<Slot, ipc::kRingEntries> slots_{};
  std::array<uint8_t, ipc::kRingEntries> state_{};  // kFree, kReserved, kSubmitted
  std::array<uint32_t, ipc::kRingEntries> freeStack_{};
  uint32_t freeTags_ = ipc::kRingEntries;
  bool broken_ = false;
};

}  // namespace nbdcage::frontend
