#include "frontend/host/remote-handle.h"

#include <poll.h>
#include <kj/debug.h>

#include <cerrno>
#include <cstdio>
#include <new>
#include <vector>

namespace nbdcage::frontend {

namespace {
constexpr uint8_t kFree = 0, kReserved = 1, kSubmitted = 2;
}

RingResources RingResources::create(uint64_t dataSize) {
  uint64_t size = ipc::dataAreaOffset() + dataSize;
  auto region = ipc::ShmRegion::create("nbdcage-handle", size);
  // A fresh memfd reads as zeroes, which is the valid initial state of the
  // rings; the header says what the host is looking at.
  auto* r = new (region.data()) ipc::Region;
  r->header.magic = ipc::kRegionMagic;
  r->header.version = ipc::kLayoutVersion;
  r->header.ringEntries = ipc::kRingEntries;
  r->header.dataOffset = ipc::dataAreaOffset();
  r->header.dataSize = dataSize;
  return {std::move(region), ipc::Doorbell(), ipc::Doorbell()};
}

RemoteHandle::RemoteHandle(RingResources rings, ExportInfo info, kj::AutoCloseFd hostDeath,
                           std::function<void()> onClose)
    : rings_(std::move(rings)),
      info_(std::move(info)),
      hostDeath_(kj::mv(hostDeath)),
      onClose_(std::move(onClose)),
      shared_(reinterpret_cast<ipc::Region*>(rings_.region.data())),
      data_(rings_.region.data() + ipc::dataAreaOffset()),
      submit_(shared_->submit),
      complete_(shared_->complete),
      allocator_(rings_.region.size() - ipc::dataAreaOffset() - kLargeAreaStart) {
  KJ_REQUIRE(rings_.region.size() >= ipc::dataAreaOffset() + kDataAreaSize, "shared region too small");
  for (uint32_t i = 0; i < ipc::kRingEntries; ++i) freeStack_[i] = ipc::kRingEntries - 1 - i;
}

RemoteHandle::~RemoteHandle() {
  if (onClose_) onClose_();
}

std::optional<Slot> RemoteHandle::reserve(uint32_t bufLen) {
  std::unique_lock lock(lock_);
  for (;;) {
    if (broken_ || stopping_) return std::nullopt;
    if (freeTags_ > 0) {
      uint32_t tag = freeStack_[freeTags_ - 1];
      // Small buffers use the tag's own slice: no allocator on the fast path.
      std::optional<uint64_t> offset = uint64_t{tag} * kHomeSlice;
      if (bufLen > kHomeSlice) {
        offset = allocator_.allocate(bufLen);
        if (offset) *offset += kLargeAreaStart;
      }
      if (offset) {
        --freeTags_;
        state_[tag] = kReserved;
        slots_[tag] = Slot{tag, *offset, bufLen, bufLen > 0 ? data_ + *offset : nullptr};
        return slots_[tag];
      }
    }
    ++waiters_;
    changed_.wait(lock);
    --waiters_;
  }
}

bool RemoteHandle::submit(const Slot& slot, ipc::Op op, uint16_t flags, uint64_t offset, uint32_t count) {
  ipc::SubmitDesc d{slot.tag, static_cast<uint16_t>(op), flags, offset, count, slot.bufLen, slot.bufOffset};
  {
    std::lock_guard lock(lock_);
    if (broken_) return false;
    KJ_ASSERT(state_[slot.tag] == kReserved, "submitting a slot twice", slot.tag);
    if (submit_.push(d) != ipc::RingStatus::kOk) {
      breakLocked("the submit ring is corrupted");
      return false;
    }
    state_[slot.tag] = kSubmitted;
  }
  if (submit_.consumerNeedsWakeup()) rings_.submitBell.ring();
  return true;
}

void RemoteHandle::release(const Slot& slot) {
  std::lock_guard lock(lock_);
  KJ_ASSERT(slot.tag < ipc::kRingEntries && state_[slot.tag] == kReserved, "releasing a slot not held", slot.tag);
  if (slot.bufLen > kHomeSlice) allocator_.free(slot.bufOffset - kLargeAreaStart, slot.bufLen);
  state_[slot.tag] = kFree;
  freeStack_[freeTags_++] = slot.tag;
  if (waiters_ > 0) changed_.notify_all();
}

void RemoteHandle::waitIdle() {
  std::unique_lock lock(lock_);
  ++waiters_;
  changed_.wait(lock, [this] { return freeTags_ == ipc::kRingEntries; });
  --waiters_;
}

void RemoteHandle::stop() {
  {
    std::lock_guard lock(lock_);
    stopping_ = true;
    changed_.notify_all();
  }
  stopBell_.ring();
}

bool RemoteHandle::broken() const {
  std::lock_guard lock(lock_);
  return broken_;
}

void RemoteHandle::breakLocked(const char* why) {
  if (!broken_) fprintf(stderr, "nbdcage: plugin host: %s; failing this connection's requests\n", why);
  broken_ = true;
  changed_.notify_all();
}

void RemoteHandle::failSubmitted(const CompletionFn& fn) {
  std::vector<Slot> victims;
  {
    std::lock_guard lock(lock_);
    for (uint32_t t = 0; t < ipc::kRingEntries; ++t) {
      if (state_[t] != kSubmitted) continue;
      state_[t] = kReserved;
      victims.push_back(slots_[t]);
    }
  }
  for (const auto& s : victims) fn(s, EIO, 0);
}

bool RemoteHandle::deliver(const ipc::CompleteDesc& c, const CompletionFn& fn) {
  Slot slot{};
  {
    std::lock_guard lock(lock_);
    if (c.tag >= ipc::kRingEntries || state_[c.tag] != kSubmitted) {
      breakLocked("the host completed a request that was not in flight");
      return false;
    }
    state_[c.tag] = kReserved;
    slot = slots_[c.tag];
  }
  int error = c.error < 0 || c.error > 4095 ? EIO : c.error;
  uint32_t maxExtents = slot.bufLen / sizeof(ipc::ExtentEntry);
  fn(slot, error, c.extents <= maxExtents ? c.extents : maxExtents);
  return true;
}

bool RemoteHandle::serveCompletions(const CompletionFn& fn, const std::function<void()>& drained) {
  for (;;) {
    ipc::CompleteDesc c;
    ipc::RingStatus st = complete_.pop(c);  // copied out of shared memory once
    if (st == ipc::RingStatus::kOk) {
      deliver(c, fn);
      continue;
    }
    drained();
    {
      std::lock_guard lock(lock_);
      if (st == ipc::RingStatus::kCorrupt) breakLocked("the complete ring is corrupted");
      if (broken_) break;
      if (stopping_) return false;
    }
    if (complete_.prepareToSleep()) {
      struct pollfd fds[3] = {{rings_.completeBell.fd(), POLLIN, 0}, {hostDeath_.get(), POLLIN, 0},
                              {stopBell_.fd(), POLLIN, 0}};
      int n;
      do {
        n = poll(fds, 3, -1);
      } while (n < 0 && errno == EINTR);
      if (fds[0].revents & POLLIN) rings_.completeBell.drain();
      if (fds[1].revents) {
        // Completions the host posted before it died are still valid.
        while (complete_.pop(c) == ipc::RingStatus::kOk && deliver(c, fn)) {
        }
        std::lock_guard lock(lock_);
        breakLocked("the plugin host died");
      }
    }
    complete_.awake();
  }
  failSubmitted(fn);
  drained();
  return false;
}

}  // namespace nbdcage::frontend
