#include "frontend/chain/boundary.h"

#include <kj/debug.h>

#include <cerrno>
#include <cstdio>

namespace nbdcage::chain {

namespace {

bool inExport(const Io& io, const ExportInfo& info) { return io.count <= info.size && io.offset <= info.size - io.count; }

uint16_t allowedFlags(ipc::Op op, const ExportInfo& info) {
  uint16_t fua = info.canFua ? ipc::kFlagFua : 0;
  switch (op) {
    case ipc::Op::kWrite:
    case ipc::Op::kTrim: return fua;
    case ipc::Op::kZero: return fua | ipc::kFlagMayTrim | (info.canFastZero ? ipc::kFlagFastZero : 0);
    case ipc::Op::kExtents: return ipc::kFlagReqOne;
    default: return 0;
  }
}

}  // namespace

int checkIo(const Io& io, const ExportInfo& info, const char** why) {
  auto fail = [why](const char* rule, int err) {
    *why = rule;
    return err;
  };
  if (io.slot.tag >= ipc::kRingEntries) return fail("a tag that names no slot", EINVAL);
  if (io.flags & ~allowedFlags(io.op, info)) return fail("flags the operation or export does not allow", EINVAL);
  switch (io.op) {
    case ipc::Op::kRead:
    case ipc::Op::kWrite:
      if (io.op == ipc::Op::kWrite && !info.canWrite) return fail("a write to a read-only export", EROFS);
      if (io.count == 0 || io.count > io.slot.bufLen) return fail("a count the buffer does not hold", EINVAL);
      break;
    case ipc::Op::kFlush:
      if (!info.canFlush) return fail("a flush the export does not support", EINVAL);
      return io.offset == 0 && io.count == 0 ? 0 : fail("a flush with a range", EINVAL);
    case ipc::Op::kTrim:
    case ipc::Op::kZero:
      if (!info.canWrite) return fail("a trim or zero on a read-only export", EROFS);
      if (io.op == ipc::Op::kTrim ? !info.canTrim : !info.canZero)
        return fail("a trim or zero the export does not support", EINVAL);
      if (io.count == 0) return fail("an empty range", EINVAL);
      break;
    case ipc::Op::kCache:
      if (!info.canCache) return fail("a cache request the export does not support", EINVAL);
      break;
    case ipc::Op::kExtents:
      if (!info.canExtents) return fail("an extents request the export does not support", EINVAL);
      if (io.count == 0 || io.slot.bufLen < sizeof(ipc::ExtentEntry)) return fail("no room for an extent", EINVAL);
      break;
    default: return fail("an unknown operation", EINVAL);
  }
  return inExport(io, info) ? 0 : fail("a range outside the export", EINVAL);
}

void Boundary::release(const Slot& slot) {
  KJ_ASSERT(slot.tag < ipc::kRingEntries && !inFlight_[slot.tag], "releasing a slot still in flight", above_, slot.tag);
  below_.release(slot);
}

void Boundary::submit(const Io& io) {
  const char* why = "";
  if (int err = checkIo(io, below_.info(), &why); err != 0) {
    fprintf(stderr, "nbdcage: bug: %s sent %s (op %u, offset %llu, count %u); failing it\n", above_.c_str(), why,
            static_cast<unsigned>(io.op), static_cast<unsigned long long>(io.offset), io.count);
    io.done->complete(io, err, 0);
    return;
  }
  KJ_ASSERT(!inFlight_[io.slot.tag], "a slot submitted twice", above_, io.slot.tag);
  submitted_[io.slot.tag] = io;
  inFlight_[io.slot.tag] = true;
  Io down = io;
  down.done = this;
  below_.submit(down);
}

void Boundary::complete(const Io& io, int error, uint32_t extents) {
  uint32_t tag = io.slot.tag;
  KJ_ASSERT(tag < ipc::kRingEntries && inFlight_[tag], "a completion for a request not in flight", above_, tag);
  inFlight_[tag] = false;
  const Io mine = submitted_[tag];  // the completer may reuse the tag at once
  if ((error < 0 || error > 4095) && error != kDisconnectNow) error = EIO;
  if (error == 0 && mine.op == ipc::Op::kExtents &&
      (extents == 0 || extents > mine.slot.bufLen / sizeof(ipc::ExtentEntry))) {
    fprintf(stderr, "nbdcage: bug: the stage below %s returned %u extents; failing the request\n", above_.c_str(),
            extents);
    error = EIO;
  }
  if (error != 0) extents = 0;
  mine.done->complete(mine, error, extents);
}

}  // namespace nbdcage::chain
