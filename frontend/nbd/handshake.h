// The fixed-newstyle handshake: greeting, client flags, then one handler
// per option until GO / EXPORT_NAME succeeds or the client leaves.
#pragma once

#include <kj/memory.h>

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/chain.h"
#include "frontend/nbd/stream.h"

namespace nbdcage::nbd {

// The outcome of a successful handshake.
struct Negotiated {
  kj::Own<chain::Handle> handle;
  std::string exportName;
  bool structured = false;
  bool baseAllocation = false;  // selected by SET_META_CONTEXT for this export
  uint16_t transmissionFlags = 0;
};

// Computes the transmission flags for an export.
uint16_t transmissionFlags(const chain::ExportInfo& info, bool readonly, bool structured);

class Handshake {
 public:
  // `client` is who the connection comes from (for the plugin's nbdkit_peer_*).
  Handshake(Stream& stream, chain::ExportSource& source, bool readonly, chain::Client client)
      : s_(stream), source_(source), readonly_(readonly), client_(std::move(client)) {}

  // nullopt: the connection ends (client aborted, went away, or broke a MUST).
  std::optional<Negotiated> run();

 private:
  enum class Next { kContinue, kTransmit, kClose };

  Next dispatch(uint32_t option, std::span<const uint8_t> data);
  Next optExportName(std::span<const uint8_t> data);
  Next optAbort();
  Next optList(std::span<const uint8_t> data);
  Next optInfoOrGo(uint32_t option, std::span<const uint8_t> data);
  Next optStructuredReply(std::span<const uint8_t> data);
  Next optMetaContext(uint32_t option, std::span<const uint8_t> data);

  bool reply(uint32_t option, uint32_t type, std::span<const uint8_t> payload = {});
  Next error(uint32_t option, uint32_t type, const std::string& message);
  bool sendInfo(uint32_t option, uint16_t item, const chain::ExportInfo& info, const std::string& name);

  Stream& s_;
  chain::ExportSource& source_;
  bool readonly_;
  chain::Client client_;
  bool fixed_ = false;
  bool noZeroes_ = false;
  bool structured_ = false;
  std::optional<std::string> metaExport_;  // export the selection was made for
  bool baseAllocation_ = false;
  Negotiated result_;
};

}  // namespace nbdcage::nbd
