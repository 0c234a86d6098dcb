// -v's trace of the protocol: the handshake's options and every request
// and reply, one debug line each (on stderr, "nbdcage: debug: ..."), as
// nbdkit -v traces them.  Off unless main turns it on: then the cost is
// one relaxed load per request.
#pragma once

#include <atomic>
#include <cstdint>

namespace nbdcage::nbd {

inline std::atomic<bool> gTrace{false};

inline bool tracing() { return gTrace.load(std::memory_order_relaxed); }

// printf-style; the line gets the debug prefix and a newline.
void trace(const char* format, ...) __attribute__((format(printf, 1, 2)));

// "NBD_OPT_GO", "NBD_CMD_READ", ...; "unknown" for anything else.
const char* optionName(uint32_t option);
const char* commandName(uint16_t type);

}  // namespace nbdcage::nbd
