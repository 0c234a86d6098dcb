// nozero: controls the client's WRITE_ZEROES: zeromode=none (not advertised: the
// client writes zeroes itself; the default), notrim (no MAY_TRIM to the
// plugin) or plugin (passed as it is); fastzeromode=default, none (fast zero
// not advertised), slow (every fast zero fails at once with ENOTSUP, as a
// plugin with no fast zeroing answers) or ignore (fast zeroes done as
// normal ones).  See nbdcage-nozero-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::nozero {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"zeromode", "fastzeromode"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::nozero
