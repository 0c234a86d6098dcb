// NBD wire constants and big-endian codecs (NBD protocol, fixed newstyle).
// Everything that touches byte order lives here and is unit-tested.
#pragma once

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace nbdcage::nbd {

inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943ULL;     // "NBDMAGIC"
inline constexpr uint64_t kIHaveOpt = 0x49484156454f5054ULL;     // "IHAVEOPT"
inline constexpr uint64_t kOptReplyMagic = 0x0003e889045565a9ULL;
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;

// Handshake flags (server) and client flags.
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientNoZeroes = 1 << 1;

// Options.
enum : uint32_t {
  kOptExportName = 1, kOptAbort = 2, kOptList = 3, kOptPeekExport = 4, kOptStartTls = 5, kOptInfo = 6,
  kOptGo = 7, kOptStructuredReply = 8, kOptListMetaContext = 9, kOptSetMetaContext = 10,
  kOptExtendedHeaders = 11,
};

// Option replies.
inline constexpr uint32_t kRepAck = 1, kRepServer = 2, kRepInfo = 3, kRepMetaContext = 4;
inline constexpr uint32_t kRepErrBit = 1u << 31;
inline constexpr uint32_t kRepErrUnsup = kRepErrBit | 1, kRepErrPolicy = kRepErrBit | 2,
                          kRepErrInvalid = kRepErrBit | 3, kRepErrPlatform = kRepErrBit | 4,
                          kRepErrTlsReqd = kRepErrBit | 5, kRepErrUnknown = kRepErrBit | 6,
                          kRepErrShutdown = kRepErrBit | 7, kRepErrBlockSizeReqd = kRepErrBit | 8,
                          kRepErrTooBig = kRepErrBit | 9;

// NBD_INFO_* items.
inline constexpr uint16_t kInfoExport = 0, kInfoName = 1, kInfoDescription = 2, kInfoBlockSize = 3;

// Transmission flags.
inline constexpr uint16_t kTxHasFlags = 1 << 0, kTxReadOnly = 1 << 1, kTxSendFlush = 1 << 2,
                          kTxSendFua = 1 << 3, kTxRotational = 1 << 4, kTxSendTrim = 1 << 5,
                          kTxSendWriteZeroes = 1 << 6, kTxSendDf = 1 << 7, kTxCanMultiConn = 1 << 8,
                          kTxSendCache = 1 << 10, kTxSendFastZero = 1 << 11;

// Commands and command flags.
enum : uint16_t {
  kCmdRead = 0, kCmdWrite = 1, kCmdDisc = 2, kCmdFlush = 3, kCmdTrim = 4, kCmdCache = 5,
  kCmdWriteZeroes = 6, kCmdBlockStatus = 7,
};
inline constexpr uint16_t kCmdFlagFua = 1 << 0, kCmdFlagNoHole = 1 << 1, kCmdFlagDf = 1 << 2,
                          kCmdFlagReqOne = 1 << 3, kCmdFlagFastZero = 1 << 4;

// Structured reply chunks.
inline constexpr uint16_t kChunkFlagDone = 1 << 0;
inline constexpr uint16_t kChunkNone = 0, kChunkOffsetData = 1, kChunkOffsetHole = 2, kChunkBlockStatus = 5,
                          kChunkError = 32769;

// NBD error values.
inline constexpr uint32_t kErrPerm = 1, kErrIo = 5, kErrNoMem = 12, kErrInval = 22, kErrNoSpc = 28,
                          kErrOverflow = 75, kErrNotSup = 95, kErrShutdown = 108;

inline constexpr uint32_t kMaxStringLength = 4096;  // names, descriptions, queries
inline constexpr uint32_t kContextBaseAllocation = 1;  // our id for base:allocation

// --- byte order ---
inline void putU16(uint8_t* p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
inline void putU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
inline void putU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
inline uint16_t getU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t getU32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint64_t getU64(const uint8_t* p) { return uint64_t{getU32(p)} << 32 | getU32(p + 4); }

// --- messages ---
struct Request {
  uint32_t magic;
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint32_t length;
};
inline constexpr size_t kRequestSize = 28;

inline Request decodeRequest(const uint8_t* b) {
  return {getU32(b), getU16(b + 4), getU16(b + 6), getU64(b + 8), getU64(b + 16), getU32(b + 24)};
}

inline std::array<uint8_t, 16> encodeSimpleReply(uint32_t error, uint64_t cookie) {
  std::array<uint8_t, 16> b;
  putU32(b.data(), kSimpleReplyMagic);
  putU32(b.data() + 4, error);
  putU64(b.data() + 8, cookie);
  return b;
}

inline constexpr size_t kChunkHeaderSize = 20;
inline void encodeChunkHeader(uint8_t* b, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t length) {
  putU32(b, kStructuredReplyMagic);
  putU16(b + 4, flags);
  putU16(b + 6, type);
  putU64(b + 8, cookie);
  putU32(b + 16, length);
}

inline constexpr size_t kOptionHeaderSize = 16;
inline constexpr size_t kOptionReplyHeaderSize = 20;
inline void encodeOptionReplyHeader(uint8_t* b, uint32_t option, uint32_t type, uint32_t length) {
  putU64(b, kOptReplyMagic);
  putU32(b + 8, option);
  putU32(b + 12, type);
  putU32(b + 16, length);
}

// Maps a host errno onto the NBD error set.
inline uint32_t toNbdError(int err) {
  switch (err) {
    case 0: return 0;
    case EPERM: case EROFS: return kErrPerm;
    case EIO: return kErrIo;
    case ENOMEM: return kErrNoMem;
    case EINVAL: return kErrInval;
    case ENOSPC: case EDQUOT: case EFBIG: return kErrNoSpc;
    case EOVERFLOW: return kErrOverflow;
    case ENOTSUP: return kErrNotSup;
    case ESHUTDOWN: return kErrShutdown;
    default: return kErrIo;
  }
}

}  // namespace nbdcage::nbd
