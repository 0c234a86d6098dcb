// checkwrite: writes become checks: a write, zero or trim succeeds (doing
// nothing) if the plugin already holds those bytes (zeroes, for zero and
// trim), and fails with EIO if not.  The plugin is opened read-only.  For
// testing copying tools: nbdcopy "$uri" "$uri".  See
// nbdcage-checkwrite-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::checkwrite {

inline bool takesKey(const std::string&) { return false; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::checkwrite
