// Validation of one transmission-phase request against what was
// negotiated.  Pure, so that every rule is unit-tested; the connection
// calls it once per request before anything reaches the plugin host.
#pragma once

#include <cstdint>

#include "frontend/nbd/wire.h"

namespace nbdcage::nbd {

struct ExportLimits {
  uint64_t size = 0;
  uint16_t txFlags = 0;       // as sent to the client
  bool structured = false;
  bool baseAllocation = false;
  uint32_t minBlock = 1;      // requests must be multiples of this
  uint32_t maxPayload = 32u << 20;
};

// 0 when the request may proceed, else the errno to answer with.  A WRITE
// that fails here still has its payload on the wire: the caller drains it.
int checkRequest(const Request& r, const ExportLimits& lim);

}  // namespace nbdcage::nbd
