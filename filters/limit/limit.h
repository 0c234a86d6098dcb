// limit: at most limit=N clients connected at once (default 1; 0: no
// limit); a client past it is refused before the greeting.  See
// nbdcage-limit-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::limit {

inline bool takesKey(const std::string& key) { return key == "limit"; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::limit
