// The uniform interface every stage of the chain offers the stage above it:
// the filters, and the plugin host's handle at the bottom.
//
//   Transmission -> [Boundary] -> filter A -> [Boundary] -> ... -> [Boundary] -> RemoteHandle
//        ^                                                                            |
//        +------------------- io.done->complete(io, error, extents) <-----------------+
//
// A request is asynchronous: `submit` hands it down and returns; exactly one
// `complete` comes back later, on the same connection thread, to the
// Completer the request names.  A stage that does not care about the result
// passes the request on unchanged, so a completion skips it entirely.
//
// Buffers (Slots) come from the bottom stage's shared memory: a read is
// answered in place and a write's payload is received into it, so the data
// is never copied on its way through the chain.  Every request holds one
// Slot (a zero-length one when it carries no data): the Slot's tag names it
// while it is in flight, and a Slot is in flight at most once at a time.
//
// One connection's stages are used by one thread only: no locks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ipc/layout.h"

namespace nbdcage::chain {

// A completion's error that is no errno: the plugin asked for its client
// to be dropped at once (nbdkit_disconnect(1)).  Filters pass it up
// unchanged; the Transmission closes the connection without replying.
inline constexpr int kDisconnectNow = -1;

// What the export looks like at this point of the chain (a filter may change
// it: a smaller size, no trim...).  The bottom stage validated the plugin's.
struct ExportInfo {
  uint64_t size = 0;
  bool canWrite = false, canFlush = false, isRotational = false, canTrim = false, canZero = false;
  bool canMultiConn = false, canExtents = false, canFastZero = false;
  uint8_t canFua = 0, canCache = 0;
  uint32_t blockMin = 0, blockPreferred = 0, blockMax = 0;  // 0: no constraints
  std::string description;
};

// A buffer in the bottom stage's shared memory, and the tag of the request
// that holds it.
struct Slot {
  uint32_t tag;
  uint64_t bufOffset;
  uint32_t bufLen;
  uint8_t* buf;
};

struct Io;

// Who hears a request's result.
class Completer {
 public:
  // `error` is 0 or a positive errno; `extents` is the number of
  // ipc::ExtentEntry records in the Slot's buffer (extents requests only,
  // at least one on success).
  virtual void complete(const Io& io, int error, uint32_t extents) = 0;

 protected:
  ~Completer() = default;
};

// One request, as it travels down the chain.  Plain data: a stage that
// changes a request passes down a changed copy.
struct Io {
  ipc::Op op;
  uint16_t flags;   // ipc::kFlag*
  uint64_t offset;  // bytes into the export
  uint32_t count;   // bytes the operation covers (0 for flush)
  Slot slot;
  Completer* done;  // told exactly once
};

class Next {
 public:
  virtual ~Next() noexcept(false) = default;  // as KJ's: a stage may own fds
  virtual const ExportInfo& info() const = 0;
  // A free tag and `bufLen` bytes of buffer, or nullopt when none is free
  // right now (wait for completions) or the connection is broken.
  virtual std::optional<Slot> reserve(uint32_t bufLen) = 0;
  // Gives back a Slot that is not in flight.
  virtual void release(const Slot& slot) = 0;
  // Starts a request; its result always comes back through io.done, even
  // when the stage below is broken.
  virtual void submit(const Io& io) = 0;
};

}  // namespace nbdcage::chain
