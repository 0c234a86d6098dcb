// fua: changes how FUA and flush reach the plugin: fuamode=none (FUA not
// advertised; the default), emulate (a flush after each FUA write, the
// plugin's own FUA unused), native (FUA passed on, advertised as native),
// force (every write FUA, flushes done as nothing), pass, discard (FUA and
// flushes dropped: unsafe, for data you can lose).  See nbdcage-fua-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::fua {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"fuamode"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::fua
