// rotational: says the disk is rotational (rotational=true, the default) or not,
// whatever the plugin says.  See nbdcage-rotational-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::rotational {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"rotational"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::rotational
