// delay: delays requests (delay-read=, delay-write=, delay-zero=,
// delay-trim=, delay-extents=, delay-cache=; rdelay= and wdelay= too), to
// simulate a slow or remote disk; delays in nbdkit_parse_delay's formats.
// A delayed request waits in the filter, on its connection's loop.  See nbdcage-delay-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::delay {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"rdelay", "wdelay", "delay-read", "delay-write", "delay-zero", "delay-trim", "delay-extents", "delay-cache", "delay-fast-zero"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::delay
