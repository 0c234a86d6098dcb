// exitwhen: exit gracefully when an outside event happens (a file appears or
// goes, a pipe closes, a process exits, a script says so).  See
// nbdcage-exitwhen-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::exitwhen {

// The parameters the filter takes from the command line.
bool takesKey(const std::string& key);

// Throws std::runtime_error (a message for the user) for a bad parameter.
std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::exitwhen
