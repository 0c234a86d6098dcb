#include "frontend/host/remote-handle.h"

#include <poll.h>

#include <kj/debug.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
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
  auto submit = ipc::DoorbellPipe::create();
  auto complete = ipc::DoorbellPipe::create();
  return {std::move(region), ipc::Doorbell(kj::mv(submit.ringEnd)), ipc::DoorbellWaiter(kj::mv(complete.waitEnd), true),
          kj::mv(submit.waitEnd), kj::mv(complete.ringEnd)};
}

RemoteHandle::RemoteHandle(RingResources rings, ExportInfo info, kj::AutoCloseFd hostDeath,
                           std::chrono::milliseconds requestTimeout, std::string plugin, std::function<void()> onClose)
    : rings_(std::move(rings)),
      info_(std::move(info)),
      hostDeath_(kj::mv(hostDeath)),
      timeout_(requestTimeout),
      plugin_(std::move(plugin)),
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

void RemoteHandle::retire() {
  broken_ = true;
  auto close = std::move(onClose_);
  onClose_ = nullptr;
  if (close) close();
}

std::optional<Slot> RemoteHandle::reserve(uint32_t bufLen) {
  if (broken_ || freeTags_ == 0) return std::nullopt;
  uint32_t tag = freeStack_[freeTags_ - 1];
  // Small buffers use the tag's own slice: no allocator on the fast path.
  std::optional<uint64_t> offset = uint64_t{tag} * kHomeSlice;
  if (bufLen > kHomeSlice) {
    offset = allocator_.allocate(bufLen);
    if (!offset) return std::nullopt;
    *offset += kLargeAreaStart;
  }
  --freeTags_;
  state_[tag] = kReserved;
  slots_[tag] = Slot{tag, *offset, bufLen, bufLen > 0 ? data_ + *offset : nullptr};
  return slots_[tag];
}

void RemoteHandle::submit(const chain::Io& io) {
  uint32_t tag = io.slot.tag;
  KJ_ASSERT(tag < ipc::kRingEntries && state_[tag] == kReserved, "submitting a slot not held", tag);
  submitted_[tag] = io;
  if (timeout_.count() > 0) submittedAt_[tag] = std::chrono::steady_clock::now();
  state_[tag] = kSubmitted;
  ++submittedCount_;
  if (broken_) return finish(tag, EIO, 0);
  const Slot& s = slots_[tag];
  ipc::SubmitDesc d{tag, static_cast<uint16_t>(io.op), io.flags, io.offset, io.count, s.bufLen, s.bufOffset};
  if (submit_.push(d) != ipc::RingStatus::kOk) {
    hostViolated("the submit ring is corrupted");
    return finish(tag, EIO, 0);
  }
  if (submit_.consumerNeedsWakeup()) rings_.submitBell.ring();
}

void RemoteHandle::release(const Slot& slot) {
  KJ_ASSERT(slot.tag < ipc::kRingEntries && state_[slot.tag] == kReserved, "releasing a slot not held", slot.tag);
  if (slot.bufLen > kHomeSlice) {
    allocator_.free(slot.bufOffset - kLargeAreaStart, slot.bufLen);
    largeUsedAt_ = std::chrono::steady_clock::now();
  } else if (slot.bufLen > 0) {
    homeUsedAt_ = std::chrono::steady_clock::now();
  }
  state_[slot.tag] = kFree;
  freeStack_[freeTags_++] = slot.tag;
}

void RemoteHandle::breakHandle(const char* why) {
  if (!broken_) fprintf(stderr, "nbdcage: plugin host: %s; failing this connection's requests\n", why);
  broken_ = true;
}

// A host that breaks the protocol is not trusted again: it is killed (and
// replaced for the next connection), and this connection fails.
void RemoteHandle::hostViolated(const char* why) {
  if (!broken_) killHost();
  breakHandle(why);
}

void RemoteHandle::killHost() const { syscall(SYS_pidfd_send_signal, hostDeath_.get(), SIGKILL, nullptr, 0); }

bool RemoteHandle::deliver(const ipc::CompleteDesc& c) {
  if (c.tag >= ipc::kRingEntries || state_[c.tag] != kSubmitted) {
    hostViolated("the host completed a request that was not in flight");
    return false;
  }
  int error = c.error == ipc::kErrorDisconnectNow ? chain::kDisconnectNow
              : c.error < 0 || c.error > 4095      ? EIO
                                                   : c.error;
  uint32_t extents = 0;
  if (error == 0 && submitted_[c.tag].op == ipc::Op::kExtents) {
    extents = std::min<uint32_t>(c.extents, slots_[c.tag].bufLen / sizeof(ipc::ExtentEntry));
    if (extents == 0) error = EIO;  // an answer that describes nothing
  }
  finish(c.tag, error, extents);
  return true;
}

// The request leaves the ring: the slot is held again by whoever submitted
// it, who may release or reuse it from inside complete().
void RemoteHandle::finish(uint32_t tag, int error, uint32_t extents) {
  state_[tag] = kReserved;
  --submittedCount_;
  const chain::Io io = submitted_[tag];
  io.done->complete(io, error, extents);
}

void RemoteHandle::drainCompletions(size_t max) {
  ipc::CompleteDesc c;
  for (size_t n = 0; n < max && !broken_; ++n) {
    ipc::RingStatus st = complete_.pop(c);  // copied out of shared memory once
    if (st == ipc::RingStatus::kEmpty) return;
    if (st == ipc::RingStatus::kCorrupt) {
      hostViolated("the complete ring is corrupted");
    } else {
      deliver(c);
    }
  }
  if (broken_) failSubmitted();
}

bool RemoteHandle::prepareWait(bool completions, Wait& w) {
  w.count = 0;
  bellAt_ = deathAt_ = -1;
  if (!broken_) {
    if (completions && submittedCount_ > 0) {
      if (!complete_.prepareToSleep()) return false;  // the host posted meanwhile
      bellAt_ = w.count;
      w.fds[w.count++] = {rings_.completeBell.fd(), POLLIN, 0};
    }
    deathAt_ = w.count;
    w.fds[w.count++] = {hostDeath_.get(), POLLIN, 0};
  }
  w.timeoutMs = msUntilDeadline();
  return true;
}

void RemoteHandle::wake(const Wait& w) {
  bool rung = false, died = false;
  if (bellAt_ >= 0) {
    complete_.awake();
    rung = w.fds[bellAt_].revents & POLLIN;
  }
  if (deathAt_ >= 0) died = w.fds[deathAt_].revents != 0;
  bellAt_ = deathAt_ = -1;
  enforceDeadlines();
  if (rung) rings_.completeBell.drain();
  if (died) hostDied();
}

void RemoteHandle::hostDied() {
  complete_.awake();
  // Completions the host posted before it died are still valid.
  ipc::CompleteDesc c;
  while (!broken_ && complete_.pop(c) == ipc::RingStatus::kOk) deliver(c);
  breakHandle("the plugin host died");
  failSubmitted();
}

// The next timed duty: the oldest request's deadline, or giving the large
// area's memory back once it has been unused for kIdleRelease.
int RemoteHandle::msUntilDeadline() const {
  auto next = std::chrono::steady_clock::time_point::max();
  if (timeout_.count() != 0 && submittedCount_ != 0 && !broken_) {
    for (uint32_t t = 0; t < ipc::kRingEntries; ++t)
      if (state_[t] == kSubmitted) next = std::min(next, submittedAt_[t] + timeout_);
  }
  if (largeUsedAt_ && allocator_.freeBytes() == allocator_.size()) next = std::min(next, *largeUsedAt_ + kIdleRelease);
  if (homeUsedAt_ && freeTags_ == ipc::kRingEntries) next = std::min(next, *homeUsedAt_ + kIdleRelease);
  if (next == std::chrono::steady_clock::time_point::max()) return -1;
  auto left = next - std::chrono::steady_clock::now();
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

void RemoteHandle::releaseIdleMemory() {
  // Pages no request holds go back to the kernel, so an idle connection
  // does not pin the memory of the biggest (or the most) requests it ever
  // made.  (The host touches only the buffers of requests in flight.)
  auto now = std::chrono::steady_clock::now();
  auto punch = [this](uint64_t start, uint64_t length) {
    fallocate(rings_.region.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              static_cast<off_t>(ipc::dataAreaOffset() + start), static_cast<off_t>(length));
  };
  // The large area: once no large buffer has been held for a while.
  if (largeUsedAt_ && allocator_.freeBytes() == allocator_.size() && now - *largeUsedAt_ >= kIdleRelease) {
    punch(kLargeAreaStart, allocator_.size());
    largeUsedAt_.reset();
  }
  // The home slices: once the handle has held no buffer at all for a while.
  if (homeUsedAt_ && freeTags_ == ipc::kRingEntries && now - *homeUsedAt_ >= kIdleRelease) {
    punch(0, kLargeAreaStart);
    homeUsedAt_.reset();
  }
}

void RemoteHandle::enforceDeadlines() {
  releaseIdleMemory();
  if (timeout_.count() == 0 || submittedCount_ == 0 || broken_) return;
  auto now = std::chrono::steady_clock::now();
  for (uint32_t t = 0; t < ipc::kRingEntries; ++t) {
    if (state_[t] != kSubmitted || now - submittedAt_[t] < timeout_) continue;
    const chain::Io& io = submitted_[t];
    fprintf(stderr,
            "nbdcage: plugin '%s': %s of %u bytes at offset %llu did not complete within %lld ms; its host is "
            "killed and replaced\n",
            plugin_.c_str(), ipc::opName(io.op), io.count, static_cast<unsigned long long>(io.offset),
            static_cast<long long>(timeout_.count()));
    killHost();
    hostDied();
    return;
  }
}

void RemoteHandle::failSubmitted() {
  std::vector<uint32_t> victims;
  for (uint32_t t = 0; t < ipc::kRingEntries; ++t)
    if (state_[t] == kSubmitted) victims.push_back(t);
  for (uint32_t t : victims) finish(t, EIO, 0);
}

}  // namespace nbdcage::frontend
