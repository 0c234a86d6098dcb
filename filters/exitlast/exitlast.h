// exitlast: stop the server when the last client's handle closes (never
// before the first).  See nbdcage-exitlast-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::exitlast {

// It takes no parameters.
inline bool takesKey(const std::string&) { return false; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::exitlast
