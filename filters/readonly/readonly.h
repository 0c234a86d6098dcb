// readonly: serves the export read-only; with readonly-file=FILE, read-only only
// while FILE exists (switched while it runs: writes, zeroes and trims then
// fail with EPERM).  See nbdcage-readonly-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::readonly {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"readonly-file"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::readonly
