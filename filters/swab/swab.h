// swab: swaps the byte order of every 16-bit (the default), 32-bit or
// 64-bit word, both ways: for a disk written on a machine of the other
// endianness.  See nbdcage-swab-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::swab {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"swab-bits"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::swab
