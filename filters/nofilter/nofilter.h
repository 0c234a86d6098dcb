// nofilter: passes everything through (for testing the chain).  See nbdcage-nofilter-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::nofilter {

// It takes no parameters.
inline bool takesKey(const std::string&) { return false; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::nofilter
