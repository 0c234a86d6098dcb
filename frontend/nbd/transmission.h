// The transmission phase of one connection.
//
//   client --requests--> reader thread --submit ring--> plugin host
//   client <--replies--- completer thread <--complete ring--
//
// The reader validates each request, reserves a tag and buffer, receives a
// write's payload straight into the shared buffer, and submits.  The
// completer sends each reply as its completion arrives (out of order), a
// read's data straight from the shared buffer.  Both write through the
// stream's single write lock.
#pragma once

#include <array>
#include <functional>

#include "frontend/host/remote-handle.h"
#include "frontend/nbd/handshake.h"
#include "frontend/nbd/reply-batch.h"
#include "frontend/nbd/request-check.h"
#include "frontend/nbd/stream.h"
#include "frontend/nbd/wire.h"
#include "ipc/layout.h"

namespace nbdcage::nbd {

class Transmission {
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

  bool serveRequest(const Request& r);  // false: end the connection
  bool submit(const Request& r, ipc::Op op, uint32_t bufLen, uint32_t count, uint16_t ipcFlags);
  void complete(const frontend::Slot& slot, int error, uint32_t extents);
  void queueError(ReplyBatch& out, uint64_t cookie, uint16_t type, int err);
  void queueOk(ReplyBatch& out, uint64_t cookie);
  void queueRead(const Pending& p, const uint8_t* data);
  void queueBlockStatus(ReplyBatch& out, const Pending& p, const uint8_t* entries, uint32_t count);
  bool replyNow(const std::function<void(ReplyBatch&)>& fill);

  Stream& s_;
  frontend::RemoteHandle& handle_;
  ExportLimits limits_;
  std::array<Pending, ipc::kRingEntries> pending_{};
  ReplyBatch batch_;  // the completer thread's
};

}  // namespace nbdcage::nbd
