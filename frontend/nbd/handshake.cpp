#include "frontend/nbd/handshake.h"

#include "frontend/nbd/trace.h"

#include <vector>

#include "frontend/host/supervisor.h"
#include "frontend/nbd/options.h"
#include "frontend/nbd/wire.h"

namespace nbdcage::nbd {

namespace {
constexpr uint32_t kMaxOptionData = 1 << 20;  // bigger options are drained, not stored
constexpr unsigned kMaxOptions = 256;         // per connection, then we hang up
constexpr const char* kBaseAllocation = "base:allocation";

void appendU32(std::vector<uint8_t>& v, uint32_t x) {
  uint8_t b[4];
  putU32(b, x);
  v.insert(v.end(), b, b + 4);
}
}  // namespace

uint16_t transmissionFlags(const chain::ExportInfo& info, bool readonly, bool structured) {
  bool writable = info.canWrite && !readonly;
  uint16_t f = kTxHasFlags;
  if (!writable) f |= kTxReadOnly;
  if (info.canFlush) f |= kTxSendFlush;
  if (writable && info.canFua) f |= kTxSendFua;
  if (info.isRotational) f |= kTxRotational;
  if (writable && info.canTrim) f |= kTxSendTrim;
  if (writable && info.canZero) f |= kTxSendWriteZeroes;
  if (writable && info.canZero && info.canFastZero) f |= kTxSendFastZero;
  if (structured) f |= kTxSendDf;
  if (info.canMultiConn) f |= kTxCanMultiConn;
  if (info.canCache) f |= kTxSendCache;
  return f;
}

std::optional<Negotiated> Handshake::run() {
  uint8_t greeting[18];
  putU64(greeting, kNbdMagic);
  putU64(greeting + 8, kIHaveOpt);
  putU16(greeting + 16, kFlagFixedNewstyle | kFlagNoZeroes);
  if (!s_.writeAll(greeting, sizeof greeting)) return std::nullopt;

  uint8_t cflags[4];
  if (!s_.readExact(cflags, 4)) return std::nullopt;
  uint32_t clientFlags = getU32(cflags);
  if (clientFlags & ~(kClientFixedNewstyle | kClientNoZeroes)) return std::nullopt;  // MUST drop
  fixed_ = clientFlags & kClientFixedNewstyle;
  noZeroes_ = clientFlags & kClientNoZeroes;
  if (tracing()) trace("fd %d: newstyle negotiation: client flags 0x%x", s_.inFd(), clientFlags);

  std::vector<uint8_t> data;
  for (unsigned count = 0; count < kMaxOptions; ++count) {
    uint8_t hdr[kOptionHeaderSize];
    if (!s_.readExact(hdr, sizeof hdr)) return std::nullopt;
    if (getU64(hdr) != kIHaveOpt) return std::nullopt;  // the stream cannot be trusted
    uint32_t option = getU32(hdr + 8);
    uint32_t length = getU32(hdr + 12);
    if (length > kMaxOptionData) {
      if (option == kOptExportName || !s_.discard(length)) return std::nullopt;
      bool known = option >= kOptExportName && option <= kOptSetMetaContext;
      if (error(option, known ? kRepErrTooBig : kRepErrUnsup, "option data too long") == Next::kClose)
        return std::nullopt;
      continue;
    }
    data.resize(length);
    if (!s_.readExact(data.data(), length)) return std::nullopt;
    if (tracing()) trace("fd %d: option %s (%u), %u bytes of data", s_.inFd(), optionName(option), option, length);
    Next next;
    if (!fixed_ && option != kOptExportName)
      next = error(option, kRepErrInvalid, "only NBD_OPT_EXPORT_NAME is allowed without fixed newstyle");
    else
      next = dispatch(option, data);
    if (next == Next::kClose) return std::nullopt;
    if (next == Next::kTransmit) {
      if (tracing())
        trace("fd %d: export '%s': transmission flags 0x%x, structured replies %s", s_.inFd(),
              result_.exportName.c_str(), result_.transmissionFlags, result_.structured ? "on" : "off");
      return std::move(result_);
    }
  }
  return std::nullopt;  // too many options: a client that negotiates forever
}

Handshake::Next Handshake::dispatch(uint32_t option, std::span<const uint8_t> data) {
  switch (option) {
    case kOptExportName: return optExportName(data);
    case kOptAbort: return optAbort();
    case kOptList: return optList(data);
    case kOptInfo:
    case kOptGo: return optInfoOrGo(option, data);
    case kOptStructuredReply: return optStructuredReply(data);
    case kOptListMetaContext:
    case kOptSetMetaContext: return optMetaContext(option, data);
    case kOptStartTls: return error(option, kRepErrPolicy, "TLS is not supported by this server");
    default: return error(option, kRepErrUnsup, "option not supported");
  }
}

bool Handshake::reply(uint32_t option, uint32_t type, std::span<const uint8_t> payload) {
  uint8_t hdr[kOptionReplyHeaderSize];
  encodeOptionReplyHeader(hdr, option, type, static_cast<uint32_t>(payload.size()));
  struct iovec iov[2] = {{hdr, sizeof hdr}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  return s_.writeAll(iov, payload.empty() ? 1 : 2);
}

Handshake::Next Handshake::error(uint32_t option, uint32_t type, const std::string& message) {
  std::span<const uint8_t> text(reinterpret_cast<const uint8_t*>(message.data()), std::min<size_t>(message.size(), 4096));
  return reply(option, type, text) ? Next::kContinue : Next::kClose;
}

Handshake::Next Handshake::optAbort() {
  reply(kOptAbort, kRepAck);  // the client may already have gone
  return Next::kClose;
}

Handshake::Next Handshake::optExportName(std::span<const uint8_t> data) {
  if (data.size() > kMaxStringLength) return Next::kClose;
  std::string name(data.begin(), data.end());
  kj::Own<chain::Handle> handle;
  try {
    handle = source_.open(name, readonly_, client_);
  } catch (const frontend::HostError&) {
    return Next::kClose;  // EXPORT_NAME has no way to report an error
  }
  uint16_t flags = transmissionFlags(handle->info(), readonly_, structured_);
  uint8_t out[10 + 124] = {};
  putU64(out, handle->info().size);
  putU16(out + 8, flags);
  if (!s_.writeAll(out, noZeroes_ ? 10 : sizeof out)) return Next::kClose;
  result_ = Negotiated{kj::mv(handle), name, structured_, baseAllocation_ && metaExport_ == name, flags};
  return Next::kTransmit;
}

Handshake::Next Handshake::optList(std::span<const uint8_t> data) {
  if (!data.empty()) return error(kOptList, kRepErrInvalid, "NBD_OPT_LIST takes no data");
  std::vector<std::pair<std::string, std::string>> exports;
  try {
    exports = source_.listExports(readonly_);
  } catch (const frontend::HostError& e) {
    return error(kOptList, kRepErrInvalid, e.what());
  }
  for (const auto& [name, description] : exports) {
    std::vector<uint8_t> p;
    appendU32(p, static_cast<uint32_t>(name.size()));
    p.insert(p.end(), name.begin(), name.end());
    p.insert(p.end(), description.begin(), description.end());
    if (!reply(kOptList, kRepServer, p)) return Next::kClose;
  }
  return reply(kOptList, kRepAck) ? Next::kContinue : Next::kClose;
}

bool Handshake::sendInfo(uint32_t option, uint16_t item, const chain::ExportInfo& info, const std::string& name) {
  std::vector<uint8_t> p(2);
  putU16(p.data(), item);
  switch (item) {
    case kInfoExport:
      p.resize(12);
      putU64(p.data() + 2, info.size);
      putU16(p.data() + 10, transmissionFlags(info, readonly_, structured_));
      break;
    case kInfoName:
      p.insert(p.end(), name.begin(), name.end());
      break;
    case kInfoDescription:
      if (info.description.empty()) return true;
      p.insert(p.end(), info.description.begin(), info.description.end());
      break;
    case kInfoBlockSize:
      p.resize(14);
      putU32(p.data() + 2, info.blockMin ? info.blockMin : 1);
      putU32(p.data() + 6, info.blockPreferred ? info.blockPreferred : 4096);
      putU32(p.data() + 10, info.blockMax ? info.blockMax : 32u << 20);
      break;
    default:
      return true;  // unknown requests are ignored
  }
  return reply(option, kRepInfo, p);
}

Handshake::Next Handshake::optInfoOrGo(uint32_t option, std::span<const uint8_t> data) {
  auto req = parseInfoRequest(data);
  if (!req) return error(option, kRepErrInvalid, "malformed NBD_OPT_INFO/GO request");
  kj::Own<chain::Handle> handle;
  try {
    handle = source_.open(req->name, readonly_, client_);
  } catch (const frontend::HostError& e) {
    return error(option, kRepErrUnknown, e.what());
  }
  const auto& info = handle->info();
  const std::string& name = handle->exportName();  // canonical: "" is the default export's own name
  if (!sendInfo(option, kInfoExport, info, name)) return Next::kClose;
  bool sent[4] = {true, false, false, false};
  for (uint16_t item : req->items) {
    if (item >= 4 || sent[item]) continue;
    sent[item] = true;
    if (!sendInfo(option, item, info, name)) return Next::kClose;
  }
  if (!reply(option, kRepAck)) return Next::kClose;
  if (option == kOptInfo) return Next::kContinue;  // the handle closes here
  uint16_t flags = transmissionFlags(info, readonly_, structured_);
  result_ = Negotiated{kj::mv(handle), req->name, structured_, baseAllocation_ && metaExport_ == req->name, flags};
  return Next::kTransmit;
}

Handshake::Next Handshake::optStructuredReply(std::span<const uint8_t> data) {
  if (!data.empty()) return error(kOptStructuredReply, kRepErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data");
  structured_ = true;
  return reply(kOptStructuredReply, kRepAck) ? Next::kContinue : Next::kClose;
}

Handshake::Next Handshake::optMetaContext(uint32_t option, std::span<const uint8_t> data) {
  bool listing = option == kOptListMetaContext;
  auto req = parseMetaContextRequest(data);
  if (!req) return error(option, kRepErrInvalid, "malformed meta context request");
  if (!listing) {
    if (!structured_) return error(option, kRepErrInvalid, "negotiate structured replies first");
    // SET replaces the previous selection, even if nothing matches.
    metaExport_ = req->exportName;
    baseAllocation_ = false;
  }
  bool match = listing && req->queries.empty();
  for (const auto& q : req->queries) match = match || queryMatchesBaseAllocation(q, listing);
  if (match) {
    std::vector<uint8_t> p;
    appendU32(p, listing ? 0 : kContextBaseAllocation);
    p.insert(p.end(), kBaseAllocation, kBaseAllocation + 15);
    if (!reply(option, kRepMetaContext, p)) return Next::kClose;
    if (!listing) baseAllocation_ = true;
  }
  return reply(option, kRepAck) ? Next::kContinue : Next::kClose;
}

}  // namespace nbdcage::nbd
