// noparallel: one request of a connection at a time, in order
// (serialize=requests, the default).  See nbdcage-noparallel-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::noparallel {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"serialize"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::noparallel
