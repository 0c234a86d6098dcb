// offset: serves the part of the plugin's disk that starts at offset= and is
// range= long (default: to its end).  See nbdcage-offset-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::offset {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"offset", "range"})
    if (key == k) return true;
  return false;
}

// The stage: [offset, offset + range) of what is below, which holds it.
kj::Own<chain::Next> openStage(chain::Next& next, uint64_t offset, uint64_t range);

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::offset
