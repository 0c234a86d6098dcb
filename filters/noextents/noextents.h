// noextents: the export claims no extents support: clients see all data, and
// the plugin's extents are never asked for (to test clients, or hide what
// is sparse).  See nbdcage-noextents-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::noextents {

// It takes no parameters.
inline bool takesKey(const std::string&) { return false; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::noextents
