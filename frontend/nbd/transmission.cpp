#include "frontend/nbd/transmission.h"

#include <cstring>
#include <thread>
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

uint16_t toIpcFlags(const Request& r) {
  uint16_t f = 0;
  if (r.flags & kCmdFlagFua) f |= ipc::kFlagFua;
  if (!(r.flags & kCmdFlagNoHole)) f |= ipc::kFlagMayTrim;
  if (r.flags & kCmdFlagFastZero) f |= ipc::kFlagFastZero;
  if (r.flags & kCmdFlagReqOne) f |= ipc::kFlagReqOne;
  return f;
}

}  // namespace

Transmission::Transmission(Stream& stream, Negotiated& n) : s_(stream), handle_(*n.handle), batch_(stream) {
  const auto& info = handle_.info();
  limits_.size = info.size;
  limits_.txFlags = n.transmissionFlags;
  limits_.structured = n.structured;
  limits_.baseAllocation = n.baseAllocation;
  limits_.minBlock = info.blockMin ? info.blockMin : 1;
  limits_.maxPayload = info.blockMax ? info.blockMax : 32u << 20;
}

void Transmission::run() {
  std::thread completer([this] {
    handle_.serveCompletions(
        [this](const frontend::Slot& slot, int error, uint32_t extents) { complete(slot, error, extents); },
        [this] { batch_.flush(); });
    // A broken host ends the connection: unblock the reader.
    if (handle_.broken()) s_.shutdown();
  });
  uint8_t hdr[kRequestSize];
  while (s_.readExact(hdr, sizeof hdr)) {
    Request r = decodeRequest(hdr);
    if (r.magic != kRequestMagic) break;  // the stream is lost: hard disconnect
    if (r.type == kCmdDisc) break;        // soft: finish what is in flight
    if (!serveRequest(r)) break;
  }
  handle_.waitIdle();
  handle_.stop();
  completer.join();
}

bool Transmission::serveRequest(const Request& r) {
  int err = checkRequest(r, limits_);
  if (err != 0) {
    if (r.type == kCmdWrite && !s_.discard(r.length)) return false;
    return replyNow([&](ReplyBatch& b) { queueError(b, r.cookie, r.type, err); });
  }
  const auto& info = handle_.info();
  uint16_t f = toIpcFlags(r);
  switch (r.type) {
    case kCmdRead: return submit(r, ipc::Op::kRead, r.length, r.length, f);
    case kCmdWrite: return submit(r, ipc::Op::kWrite, r.length, r.length, f);
    case kCmdFlush: return submit(r, ipc::Op::kFlush, 0, 0, f);
    case kCmdTrim: return submit(r, ipc::Op::kTrim, 0, r.length, f);
    case kCmdWriteZeroes: return submit(r, ipc::Op::kZero, 0, r.length, f);
    case kCmdCache:
      // Some clients send CACHE unadvertised; doing nothing is correct.
      if (!info.canCache) return replyNow([&](ReplyBatch& b) { queueOk(b, r.cookie); });
      return submit(r, ipc::Op::kCache, 0, r.length, f);
    case kCmdBlockStatus:
      if (!info.canExtents) {
        Pending p{r.cookie, r.type, r.flags, r.offset, r.length};
        ipc::ExtentEntry all{r.length, 0, 0};  // everything is data
        return replyNow(
            [&](ReplyBatch& b) { queueBlockStatus(b, p, reinterpret_cast<const uint8_t*>(&all), 1); });
      }
      return submit(r, ipc::Op::kExtents, kExtentsBuffer, r.length, f);
  }
  return replyNow([&](ReplyBatch& b) { queueError(b, r.cookie, r.type, EINVAL); });
}

bool Transmission::submit(const Request& r, ipc::Op op, uint32_t bufLen, uint32_t count, uint16_t ipcFlags) {
  auto slot = handle_.reserve(bufLen);
  if (!slot) {
    // The host broke: a write's payload is still on the wire.
    if (r.type == kCmdWrite) s_.discard(r.length);
    replyNow([&](ReplyBatch& b) { queueError(b, r.cookie, r.type, EIO); });
    return false;
  }
  pending_[slot->tag] = Pending{r.cookie, r.type, r.flags, r.offset, count};
  if (r.type == kCmdWrite && !s_.readExact(slot->buf, r.length)) {
    handle_.release(*slot);
    return false;  // the client went away mid-payload
  }
  if (!handle_.submit(*slot, op, ipcFlags, r.offset, count)) {
    handle_.release(*slot);
    return replyNow([&](ReplyBatch& b) { queueError(b, r.cookie, r.type, EIO); });
  }
  return true;
}

void Transmission::complete(const frontend::Slot& slot, int error, uint32_t extents) {
  const Pending& p = pending_[slot.tag];
  if (error != 0)
    queueError(batch_, p.cookie, p.type, error);
  else if (p.type == kCmdRead)
    queueRead(p, slot.buf);
  else if (p.type == kCmdBlockStatus)
    queueBlockStatus(batch_, p, slot.buf, extents);
  else
    queueOk(batch_, p.cookie);
  // The slot (and the read data in it) is reused only once the reply left.
  batch_.afterFlush([this, slot] { handle_.release(slot); });
}

void Transmission::queueOk(ReplyBatch& out, uint64_t cookie) {
  auto reply = encodeSimpleReply(0, cookie);
  out.add(reply.data(), reply.size());
}

void Transmission::queueError(ReplyBatch& out, uint64_t cookie, uint16_t type, int err) {
  uint32_t nbdErr = toNbdError(err);
  // With structured replies, a READ or BLOCK_STATUS must never get a simple
  // reply; other commands may.
  if (limits_.structured && (type == kCmdRead || type == kCmdBlockStatus)) {
    uint8_t b[kChunkHeaderSize + 6];
    encodeChunkHeader(b, kChunkFlagDone, kChunkError, cookie, 6);
    putU32(b + kChunkHeaderSize, nbdErr);
    putU16(b + kChunkHeaderSize + 4, 0);
    out.add(b, sizeof b);
    return;
  }
  auto reply = encodeSimpleReply(nbdErr, cookie);
  out.add(reply.data(), reply.size());
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

void Transmission::queueBlockStatus(ReplyBatch& out, const Pending& p, const uint8_t* entries, uint32_t count) {
  // Turn the host's extents into NBD descriptors: lengths clipped to what
  // is left of the request, stopping once it is covered (or after one with
  // REQ_ONE).  An empty or zero-length answer is a broken host: EIO.
  std::vector<uint8_t> body(4);
  putU32(body.data(), kContextBaseAllocation);
  uint64_t left = p.length;
  for (uint32_t i = 0; i < count && left > 0; ++i) {
    ipc::ExtentEntry e;
    std::memcpy(&e, entries + i * sizeof e, sizeof e);
    if (e.length == 0) return queueError(out, p.cookie, p.type, EIO);
    uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(e.length, left));
    uint8_t d[8];
    putU32(d, len);
    putU32(d + 4, e.type & 3);
    body.insert(body.end(), d, d + 8);
    left -= len;
    if (p.flags & kCmdFlagReqOne) break;
  }
  if (body.size() == 4) return queueError(out, p.cookie, p.type, EIO);
  uint8_t hdr[kChunkHeaderSize];
  encodeChunkHeader(hdr, kChunkFlagDone, kChunkBlockStatus, p.cookie, static_cast<uint32_t>(body.size()));
  out.add(hdr, sizeof hdr, std::move(body));
}

// The reader thread's own replies (validation errors, unsupported
// extents, a host that broke) go out at once through a batch of one.
bool Transmission::replyNow(const std::function<void(ReplyBatch&)>& fill) {
  ReplyBatch one(s_);
  fill(one);
  return one.flush();
}

}  // namespace nbdcage::nbd
