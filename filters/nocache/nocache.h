// nocache: controls what the client's CACHE requests do: cachemode=none (not
// advertised: the default), nop (advertised, done as nothing) or plugin
// (passed to the plugin).  See nbdcage-nocache-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::nocache {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"cachemode"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::nocache
