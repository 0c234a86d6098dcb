// multi-conn: overrides whether multi-conn is advertised:
// multi-conn-mode=enable or disable (the default, as the plugin: auto).  See nbdcage-multi-conn-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::multiconn {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"multi-conn-mode"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::multiconn
