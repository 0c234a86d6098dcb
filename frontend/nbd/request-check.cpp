#include "frontend/nbd/request-check.h"

#include <cerrno>

namespace nbdcage::nbd {

namespace {

uint16_t allowedFlags(uint16_t type, const ExportLimits& lim) {
  uint16_t fua = (lim.txFlags & kTxSendFua) ? kCmdFlagFua : 0;
  switch (type) {
    case kCmdRead: return fua | (lim.structured ? kCmdFlagDf : 0);
    case kCmdWrite:
    case kCmdFlush:
    case kCmdTrim: return fua;
    case kCmdWriteZeroes:
      return fua | kCmdFlagNoHole | ((lim.txFlags & kTxSendFastZero) ? kCmdFlagFastZero : 0);
    case kCmdCache: return 0;
    case kCmdBlockStatus: return kCmdFlagReqOne;
    default: return 0;
  }
}

bool inBounds(const Request& r, uint64_t size) { return r.length <= size && r.offset <= size - r.length; }

bool aligned(const Request& r, uint32_t minBlock) {
  return minBlock <= 1 || (r.offset % minBlock == 0 && r.length % minBlock == 0);
}

}  // namespace

int checkRequest(const Request& r, const ExportLimits& lim) {
  bool readonly = lim.txFlags & kTxReadOnly;
  if (r.type > kCmdBlockStatus) return EINVAL;
  if (r.flags & ~allowedFlags(r.type, lim)) return EINVAL;
  switch (r.type) {
    case kCmdRead:
      if (r.length == 0 || r.length > lim.maxPayload || !aligned(r, lim.minBlock)) return EINVAL;
      return inBounds(r, lim.size) ? 0 : EINVAL;
    case kCmdWrite:
      if (readonly) return EPERM;
      if (r.length == 0 || r.length > lim.maxPayload || !aligned(r, lim.minBlock)) return EINVAL;
      return inBounds(r, lim.size) ? 0 : ENOSPC;
    case kCmdFlush:
      if (!(lim.txFlags & kTxSendFlush)) return EINVAL;
      return r.offset == 0 && r.length == 0 ? 0 : EINVAL;
    case kCmdTrim:
      if (readonly) return EPERM;
      if (!(lim.txFlags & kTxSendTrim) || r.length == 0 || !aligned(r, lim.minBlock)) return EINVAL;
      return inBounds(r, lim.size) ? 0 : EINVAL;
    case kCmdWriteZeroes:
      if (readonly) return EPERM;
      if (!(lim.txFlags & kTxSendWriteZeroes) || r.length == 0 || !aligned(r, lim.minBlock)) return EINVAL;
      return inBounds(r, lim.size) ? 0 : ENOSPC;
    case kCmdCache:
      return r.length > 0 && inBounds(r, lim.size) ? 0 : EINVAL;
    case kCmdBlockStatus:
      if (!lim.structured || !lim.baseAllocation || r.length == 0) return EINVAL;
      return inBounds(r, lim.size) ? 0 : EINVAL;
    default:
      return EINVAL;  // DISC never reaches here
  }
}

}  // namespace nbdcage::nbd
