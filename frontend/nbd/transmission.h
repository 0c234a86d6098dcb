// The transmission phase of one connection: one thread, one event loop.
//
//   client --requests--> [parse, validate, reserve] --chain--> submit ring --> plugin host
//   client <--replies--- [reply batch]  <--complete()--chain-- complete ring <-- plugin host
//
// poll() waits on the socket (readable while we can take requests,
// writable while replies are queued) and on whatever the chain's bottom
// says (prepareWait/wake; for the plugin host, its doorbell and pidfd).
// A write's payload is received straight into its shared buffer; a read's
// data is sent straight from it; replies go out in batches, in completion
// order.  Nothing here ever blocks on one
// direction while the other could make progress.
#pragma once

#include <array>
#include <functional>
#include <optional>

#include "frontend/chain/chain.h"
#include "frontend/nbd/handshake.h"
#include "frontend/nbd/reply-batch.h"
#include "frontend/nbd/request-check.h"
#include "frontend/nbd/stream.h"
#include "frontend/nbd/wire.h"
#include "ipc/layout.h"

namespace nbdcage::nbd {

class Transmission final : private chain::Completer {
 public:
  Transmission(Stream& stream, Negotiated& negotiated);
  // Serves until the client disconnects or the host breaks.
  void run();

 private:
  struct Pending {
    uint64_t cookie;
    uint16_t type;
    uint16_t flags;
    uint64_t offset;
    uint32_t length;  // as requested (block status: the clamped length)
  };

  bool waitForEvents();  // false: nothing can ever happen again
  void readInput();
  bool startRequest(const Request& r);  // false: no slot free yet, retry later
  bool continuePayload();               // false: more bytes needed
  bool continueDiscard();
  void submit(const Request& r, const chain::Slot& slot, ipc::Op op, uint32_t count);
  void release(const chain::Slot& slot);
  void endInput();

  void complete(const chain::Io& io, int error, uint32_t extents) override;
  void queueError(uint64_t cookie, uint16_t type, int err);
  void queueOk(uint64_t cookie);
  void queueRead(const Pending& p, const uint8_t* data);
  void queueBlockStatus(const Pending& p, const uint8_t* entries, uint32_t count);

  enum class In { kHeader, kPayload, kDiscard, kClosed };

  Stream& s_;
  chain::Next& chain_;              // where requests go
  chain::Bottom& bottom_;           // what the event loop waits on
  const chain::ExportInfo& info_;
  ExportLimits limits_;
  std::array<Pending, ipc::kRingEntries> pending_{};  // by tag
  uint32_t held_ = 0;  // slots reserved and not yet released
  ReplyBatch batch_;

  In in_ = In::kHeader;
  bool inputReady_ = true;    // poll said readable (or we have not asked yet)
  bool outputBlocked_ = false;  // writev said EAGAIN; wait for POLLOUT
  bool outputDead_ = false;     // the client stopped reading for good
  bool waitingForSlot_ = false;
  Request payloadReq_{};                  // the write whose payload is arriving
  std::optional<chain::Slot> payloadSlot_;
  uint32_t payloadGot_ = 0;
  uint64_t discardLeft_ = 0;
};

}  // namespace nbdcage::nbd
