#include "frontend/nbd/transmission.h"

#include <sys/socket.h>

#include <cinttypes>
#include <cstring>

#include "frontend/nbd/trace.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace nbdcage::nbd {

namespace {

constexpr uint32_t kExtentsBuffer = 64 * 1024;  // room for 4096 extents per reply

bool allZero(const uint8_t* p, size_t n) {
  // Word-at-a-time with an early exit: data that is not zero is usually
  // found non-zero in the first bytes.
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != 0) return false;
  }
  for (; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

// The client's flags, as the plugin's calls take them for this operation
// (FUA on a flush says nothing more than the flush).
uint16_t toIpcFlags(const Request& r, ipc::Op op) {
  uint16_t f = 0;
  bool writes = op == ipc::Op::kWrite || op == ipc::Op::kTrim || op == ipc::Op::kZero;
  if (writes && (r.flags & kCmdFlagFua)) f |= ipc::kFlagFua;
  if (op == ipc::Op::kZero && !(r.flags & kCmdFlagNoHole)) f |= ipc::kFlagMayTrim;
  if (op == ipc::Op::kZero && (r.flags & kCmdFlagFastZero)) f |= ipc::kFlagFastZero;
  if (op == ipc::Op::kExtents && (r.flags & kCmdFlagReqOne)) f |= ipc::kFlagReqOne;
  return f;
}

}  // namespace

Transmission::Transmission(Stream& stream, Negotiated& n)
    : s_(stream), chain_(n.handle->top()), bottom_(n.handle->bottom()), info_(n.handle->info()), batch_(stream) {
  limits_.size = info_.size;
  limits_.txFlags = n.transmissionFlags;
  limits_.structured = n.structured;
  limits_.baseAllocation = n.baseAllocation;
  limits_.minBlock = info_.blockMin ? info_.blockMin : 1;
  limits_.maxPayload = info_.blockMax ? info_.blockMax : 32u << 20;
}

void Transmission::run() {
  s_.setNonBlocking();
  for (;;) {
    // Completions first: they free tags and buffers for new requests.
    bottom_.drainCompletions(outputDead_ ? ipc::kRingEntries : batch_.room());
    if (bottom_.broken() && in_ != In::kClosed) endInput();  // the host is gone: so is this connection
    // A request waiting for room while none of our slots is out waits for
    // the filters' own requests instead: try again each time round.
    if (waitingForSlot_ && held_ == 0) waitingForSlot_ = false;
    if (in_ != In::kClosed && inputReady_) readInput();
    if (!batch_.empty() && !outputBlocked_) {
      IoStatus st = batch_.flushSome();
      if (st == IoStatus::kAgain) outputBlocked_ = true;
      if (st == IoStatus::kClosed) {
        outputDead_ = true;
        endInput();
      }
    }
    if (outputDead_) bottom_.drainCompletions(ipc::kRingEntries);  // replies nobody reads: just release
    // Done once nothing is left anywhere: not our slots, not our replies,
    // and not a filter's own requests below us.
    if (in_ == In::kClosed && held_ == 0 && batch_.empty() && bottom_.inFlight() == 0) return;
    if (!waitForEvents()) return;
  }
}

bool Transmission::waitForEvents() {
  bool canRead = in_ != In::kClosed && !waitingForSlot_ && !batch_.full();
  // Requests already in the buffer need no poll: parse them first.
  bool buffered = in_ == In::kHeader ? s_.buffered() >= kRequestSize : s_.buffered() > 0;
  if (canRead && buffered) return true;
  struct pollfd fds[2 + chain::Bottom::Wait::kMaxFds];
  int n = 0;
  short io = 0;
  if (canRead) io |= POLLIN;
  if (!batch_.empty() && outputBlocked_) io |= POLLOUT;
  int inIdx = -1, outIdx = -1;
  if (s_.inFd() == s_.outFd()) {
    if (io) { fds[n] = {s_.inFd(), io, 0}; inIdx = outIdx = n++; }
  } else {
    if (io & POLLIN) { fds[n] = {s_.inFd(), POLLIN, 0}; inIdx = n++; }
    if (io & POLLOUT) { fds[n] = {s_.outFd(), POLLOUT, 0}; outIdx = n++; }
  }
  // Below: wake for completions only while there is room to reply to them.
  chain::Bottom::Wait below;
  if (!bottom_.prepareWait(!batch_.full(), below)) return true;  // completions already waiting
  int belowAt = n;
  for (int i = 0; i < below.count; ++i) fds[n++] = below.fds[i];
  if (n == 0) return false;
  int r;
  do {
    r = poll(fds, n, below.timeoutMs);
  } while (r < 0 && errno == EINTR);
  for (int i = 0; i < below.count; ++i) below.fds[i].revents = r < 0 ? 0 : fds[belowAt + i].revents;
  bottom_.wake(below);
  if (r < 0) return false;
  if (inIdx >= 0 && (fds[inIdx].revents & (POLLIN | POLLHUP | POLLERR))) inputReady_ = true;
  if (outIdx >= 0 && (fds[outIdx].revents & (POLLOUT | POLLHUP | POLLERR))) outputBlocked_ = false;
  return true;
}

// Parses and starts as many requests as the input, the free tags and the
// reply batch allow.
void Transmission::readInput() {
  while (in_ != In::kClosed && !batch_.full()) {
    if (in_ == In::kPayload) {
      if (!continuePayload()) return;
      continue;
    }
    if (in_ == In::kDiscard) {
      if (!continueDiscard()) return;
      continue;
    }
    if (s_.buffered() < kRequestSize) {
      IoStatus st = s_.fill();
      if (st == IoStatus::kAgain) {
        inputReady_ = false;
        return;
      }
      if (st == IoStatus::kClosed) {
        endInput();
        return;
      }
      if (s_.buffered() < kRequestSize) continue;
    }
    Request r = decodeRequest(s_.data());
    if (r.magic != kRequestMagic || r.type == kCmdDisc) {
      endInput();  // bad magic: the stream is lost (hard); DISC: soft
      return;
    }
    waitingForSlot_ = !startRequest(r);
    if (waitingForSlot_) return;  // the header stays buffered until a tag is free
  }
}

bool Transmission::startRequest(const Request& r) {
  int err = checkRequest(r, limits_);

  // Some clients send CACHE unadvertised: doing nothing is right.  Without
  // extents support every block is data.  Neither needs the host.
  bool local =
      err == 0 && ((r.type == kCmdCache && !info_.canCache) || (r.type == kCmdBlockStatus && !info_.canExtents));
  std::optional<chain::Slot> slot;
  if (err == 0 && !local) {
    uint32_t bufLen = r.type == kCmdRead || r.type == kCmdWrite ? r.length
                      : r.type == kCmdBlockStatus              ? kExtentsBuffer
                                                                : 0;
    slot = chain_.reserve(bufLen);
    if (!slot && !bottom_.broken()) {
      // The header stays buffered until a completion frees room; if none
      // can (nothing of ours or of the filters' is in flight), waiting
      // would be for ever: the request fails instead.
      if (held_ > 0 || bottom_.inFlight() > 0) return false;
      fprintf(stderr, "nbdcage: bug: no buffer of %u bytes for a request, with nothing in flight; failing it\n", bufLen);
      err = ENOMEM;
    }
    if (slot) ++held_;
  }
  s_.consume(kRequestSize);
  if (tracing())
    trace("fd %d: request %s cookie=0x%" PRIx64 " offset=%" PRIu64 " count=%u flags=0x%x%s", s_.inFd(),
          commandName(r.type), r.cookie, r.offset, r.length, r.flags, err == 0 ? "" : " (refused)");
  if (local) {
    if (r.type == kCmdCache) {
      queueOk(r.cookie);
    } else {
      Pending p{r.cookie, r.type, r.flags, r.offset, r.length};
      ipc::ExtentEntry all{r.length, 0, 0};
      queueBlockStatus(p, reinterpret_cast<const uint8_t*>(&all), 1);
    }
    return true;
  }
  if (err != 0) {
    queueError(r.cookie, r.type, err);
    if (r.type == kCmdWrite && r.length > 0) {
      discardLeft_ = r.length;  // the payload follows even when rejected
      in_ = In::kDiscard;
    }
    return true;
  }
  if (!slot) {  // the host broke
    queueError(r.cookie, r.type, EIO);
    endInput();
    return true;
  }
  pending_[slot->tag] = Pending{r.cookie, r.type, r.flags, r.offset, r.length};
  switch (r.type) {
    case kCmdRead: submit(r, *slot, ipc::Op::kRead, r.length); break;
    case kCmdWrite:
      payloadReq_ = r;
      payloadSlot_ = slot;
      payloadGot_ = 0;
      in_ = In::kPayload;
      break;
    case kCmdFlush: submit(r, *slot, ipc::Op::kFlush, 0); break;
    case kCmdTrim: submit(r, *slot, ipc::Op::kTrim, r.length); break;
    case kCmdWriteZeroes: submit(r, *slot, ipc::Op::kZero, r.length); break;
    case kCmdCache: submit(r, *slot, ipc::Op::kCache, r.length); break;
    case kCmdBlockStatus: submit(r, *slot, ipc::Op::kExtents, r.length); break;
  }
  return true;
}

bool Transmission::continuePayload() {
  size_t got;
  IoStatus st = s_.readInto(payloadSlot_->buf + payloadGot_, payloadReq_.length - payloadGot_, got);
  payloadGot_ += static_cast<uint32_t>(got);
  if (st == IoStatus::kClosed) {
    endInput();  // the client went away mid-payload
    return false;
  }
  if (payloadGot_ < payloadReq_.length) {
    inputReady_ = false;
    return false;
  }
  in_ = In::kHeader;
  auto slot = *payloadSlot_;
  payloadSlot_.reset();
  submit(payloadReq_, slot, ipc::Op::kWrite, payloadReq_.length);
  return true;
}

bool Transmission::continueDiscard() {
  if (s_.buffered() == 0) {
    IoStatus st = s_.fill();
    if (st == IoStatus::kAgain) {
      inputReady_ = false;
      return false;
    }
    if (st == IoStatus::kClosed) {
      endInput();
      return false;
    }
  }
  size_t n = static_cast<size_t>(std::min<uint64_t>(discardLeft_, s_.buffered()));
  s_.consume(n);
  discardLeft_ -= n;
  if (discardLeft_ == 0) in_ = In::kHeader;
  return true;
}

// The answer may come back before this returns (a broken host: EIO).
void Transmission::submit(const Request& r, const chain::Slot& slot, ipc::Op op, uint32_t count) {
  uint64_t offset = op == ipc::Op::kFlush ? 0 : r.offset;
  chain_.submit(chain::Io{op, toIpcFlags(r, op), offset, count, slot, this});
}

void Transmission::release(const chain::Slot& slot) {
  chain_.release(slot);
  --held_;
}

// No more requests will be read: the client closed, sent DISC, broke the
// protocol, or the host died.  What is in flight still gets its reply.
void Transmission::endInput() {
  if (payloadSlot_) {
    release(*payloadSlot_);
    payloadSlot_.reset();
  }
  in_ = In::kClosed;
  waitingForSlot_ = false;
}

void Transmission::complete(const chain::Io& io, int error, uint32_t extents) {
  const chain::Slot& slot = io.slot;
  if (error == chain::kDisconnectNow && !outputDead_) {
    // The plugin dropped this client: no reply to anything, now.
    fprintf(stderr, "nbdcage: the plugin disconnected a client (nbdkit_disconnect)\n");
    outputDead_ = true;
    endInput();
    ::shutdown(s_.inFd(), SHUT_RDWR);
    if (s_.outFd() != s_.inFd()) ::shutdown(s_.outFd(), SHUT_RDWR);
  }
  if (outputDead_) return release(slot);  // nobody reads the reply
  const Pending& p = pending_[slot.tag];
  if (tracing())
    trace("fd %d: reply %s cookie=0x%" PRIx64 ": %s", s_.inFd(), commandName(p.type), p.cookie,
          error == 0 ? "ok" : strerror(error));
  if (error != 0)
    queueError(p.cookie, p.type, error);
  else if (p.type == kCmdRead)
    queueRead(p, slot.buf);
  else if (p.type == kCmdBlockStatus)
    queueBlockStatus(p, slot.buf, extents);
  else
    queueOk(p.cookie);
  // The slot (and the read data in it) is reused only once the reply left;
  // a request that waited for a slot may go now.
  batch_.afterFlush([this, slot] {
    release(slot);
    waitingForSlot_ = false;
  });
}

void Transmission::queueOk(uint64_t cookie) {
  auto reply = encodeSimpleReply(0, cookie);
  batch_.add(reply.data(), reply.size());
}

void Transmission::queueError(uint64_t cookie, uint16_t type, int err) {
  uint32_t nbdErr = toNbdError(err);
  // With structured replies, a READ or BLOCK_STATUS must never get a simple
  // reply; other commands may.
  if (limits_.structured && (type == kCmdRead || type == kCmdBlockStatus)) {
    uint8_t b[kChunkHeaderSize + 6];
    encodeChunkHeader(b, kChunkFlagDone, kChunkError, cookie, 6);
    putU32(b + kChunkHeaderSize, nbdErr);
    putU16(b + kChunkHeaderSize + 4, 0);
    batch_.add(b, sizeof b);
    return;
  }
  auto reply = encodeSimpleReply(nbdErr, cookie);
  batch_.add(reply.data(), reply.size());
}

void Transmission::queueRead(const Pending& p, const uint8_t* data) {
  if (!limits_.structured) {
    auto hdr = encodeSimpleReply(0, p.cookie);
    batch_.add(hdr.data(), hdr.size(), data, p.length);
    return;
  }
  if (allZero(data, p.length)) {
    uint8_t b[kChunkHeaderSize + 12];
    encodeChunkHeader(b, kChunkFlagDone, kChunkOffsetHole, p.cookie, 12);
    putU64(b + kChunkHeaderSize, p.offset);
    putU32(b + kChunkHeaderSize + 8, p.length);
    batch_.add(b, sizeof b);
    return;
  }
  uint8_t b[kChunkHeaderSize + 8];
  encodeChunkHeader(b, kChunkFlagDone, kChunkOffsetData, p.cookie, 8 + p.length);
  putU64(b + kChunkHeaderSize, p.offset);
  batch_.add(b, sizeof b, data, p.length);
}

void Transmission::queueBlockStatus(const Pending& p, const uint8_t* entries, uint32_t count) {
  // Turn the host's extents into NBD descriptors: lengths clipped to what
  // is left of the request, stopping once it is covered (or after one with
  // REQ_ONE).  An empty or zero-length answer is a broken host: EIO.
  std::vector<uint8_t> body(4);
  putU32(body.data(), kContextBaseAllocation);
  uint64_t left = p.length;
  for (uint32_t i = 0; i < count && left > 0; ++i) {
    ipc::ExtentEntry e;
    std::memcpy(&e, entries + i * sizeof e, sizeof e);
    if (e.length == 0) return queueError(p.cookie, p.type, EIO);
    uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(e.length, left));
    uint8_t d[8];
    putU32(d, len);
    putU32(d + 4, e.type & 3);
    body.insert(body.end(), d, d + 8);
    left -= len;
    if (p.flags & kCmdFlagReqOne) break;
  }
  if (body.size() == 4) return queueError(p.cookie, p.type, EIO);
  uint8_t hdr[kChunkHeaderSize];
  encodeChunkHeader(hdr, kChunkFlagDone, kChunkBlockStatus, p.cookie, static_cast<uint32_t>(body.size()));
  batch_.add(hdr, sizeof hdr, std::move(body));
}

}  // namespace nbdcage::nbd
