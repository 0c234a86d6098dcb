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

Transmission::Transmission(Stream& stream, Negotiated& n) : s_(stream), handle_(*n.handle) {
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
    handle_.serveCompletions([this](const frontend::Slot& slot, int error, uint32_t extents) {
      complete(slot, error, extents);
    });
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
    return sendError(r.cookie, r.type, err);
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
      if (!info.canCache) return sendOk(r.cookie);
      return submit(r, ipc::Op::kCache, 0, r.length, f);
    case kCmdBlockStatus:
      if (!info.canExtents) {
        Pending p{r.cookie, r.type, r.flags, r.offset, r.length};
        ipc::ExtentEntry all{r.length, 0, 0};  // everything is data
        return sendBlockStatus(p, reinterpret_cast<const uint8_t*>(&all), 1);
      }
      return submit(r, ipc::Op::kExtents, kExtentsBuffer, r.length, f);
  }
  return sendError(r.cookie, r.type, EINVAL);
}

bool Transmission::submit(const Request& r, ipc::Op op, uint32_t bufLen, uint32_t count, uint16_t ipcFlags) {
  auto slot = handle_.reserve(bufLen);
  if (!slot) {
    // The host broke: a write's payload is still on the wire.
    if (r.type == kCmdWrite) s_.discard(r.length);
    sendError(r.cookie, r.type, EIO);
    return false;
  }
  pending_[slot->tag] = Pending{r.cookie, r.type, r.flags, r.offset, count};
  if (r.type == kCmdWrite && !s_.readExact(slot->buf, r.length)) {
    handle_.release(*slot);
    return false;  // the client went away mid-payload
  }
  if (!handle_.submit(*slot, op, ipcFlags, r.offset, count)) {
    handle_.release(*slot);
    return sendError(r.cookie, r.type, EIO);
  }
  return true;
}

void Transmission::complete(const frontend::Slot& slot, int error, uint32_t extents) {
  const Pending& p = pending_[slot.tag];
  if (error != 0)
    sendError(p.cookie, p.type, error);
  else if (p.type == kCmdRead)
    sendRead(p, slot.buf);
  else if (p.type == kCmdBlockStatus)
    sendBlockStatus(p, slot.buf, extents);
  else
    sendOk(p.cookie);
  handle_.release(slot);
}

bool Transmission::sendOk(uint64_t cookie) {
  auto reply = encodeSimpleReply(0, cookie);
  return s_.writeAll(reply.data(), reply.size());
}

bool Transmission::sendError(uint64_t cookie, uint16_t type, int err) {
  uint32_t nbdErr = toNbdError(err);
  // With structured replies, a READ or BLOCK_STATUS must never get a simple
  // reply; other commands may.
  if (limits_.structured && (type == kCmdRead || type == kCmdBlockStatus)) {
    uint8_t b[kChunkHeaderSize + 6];
    encodeChunkHeader(b, kChunkFlagDone, kChunkError, cookie, 6);
    putU32(b + kChunkHeaderSize, nbdErr);
    putU16(b + kChunkHeaderSize + 4, 0);
    return s_.writeAll(b, sizeof b);
  }
  auto reply = encodeSimpleReply(nbdErr, cookie);
  return s_.writeAll(reply.data(), reply.size());
}

bool Transmission::sendRead(const Pending& p, const uint8_t* data) {
  if (!limits_.structured) {
    auto hdr = encodeSimpleReply(0, p.cookie);
    struct iovec iov[2] = {{hdr.data(), hdr.size()}, {const_cast<uint8_t*>(data), p.length}};
    return s_.writeAll(iov, 2);
  }
  if (allZero(data, p.length)) {
    uint8_t b[kChunkHeaderSize + 12];
    encodeChunkHeader(b, kChunkFlagDone, kChunkOffsetHole, p.cookie, 12);
    putU64(b + kChunkHeaderSize, p.offset);
    putU32(b + kChunkHeaderSize + 8, p.length);
    return s_.writeAll(b, sizeof b);
  }
  uint8_t b[kChunkHeaderSize + 8];
  encodeChunkHeader(b, kChunkFlagDone, kChunkOffsetData, p.cookie, 8 + p.length);
  putU64(b + kChunkHeaderSize, p.offset);
  struct iovec iov[2] = {{b, sizeof b}, {const_cast<uint8_t*>(data), p.length}};
  return s_.writeAll(iov, 2);
}

bool Transmission::sendBlockStatus(const Pending& p, const uint8_t* entries, uint32_t count) {
  // Turn the host's extents into NBD descriptors: lengths clipped to what
  // is left of the request, stopping once it is covered (or after one with
  // REQ_ONE).  An empty or zero-length answer is a broken host: EIO.
  std::vector<uint8_t> body(4);
  putU32(body.data(), kContextBaseAllocation);
  uint64_t left = p.length;
  for (uint32_t i = 0; i < count && left > 0; ++i) {
    ipc::ExtentEntry e;
    std::memcpy(&e, entries + i * sizeof e, sizeof e);
    if (e.length == 0) return sendError(p.cookie, p.type, EIO);
    uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(e.length, left));
    uint8_t d[8];
    putU32(d, len);
    putU32(d + 4, e.type & 3);
    body.insert(body.end(), d, d + 8);
    left -= len;
    if (p.flags & kCmdFlagReqOne) break;
  }
  if (body.size() == 4) return sendError(p.cookie, p.type, EIO);
  uint8_t hdr[kChunkHeaderSize];
  encodeChunkHeader(hdr, kChunkFlagDone, kChunkBlockStatus, p.cookie, static_cast<uint32_t>(body.size()));
  struct iovec iov[2] = {{hdr, sizeof hdr}, {body.data(), body.size()}};
  return s_.writeAll(iov, 2);
}

}  // namespace nbdcage::nbd
