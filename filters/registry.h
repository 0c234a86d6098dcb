// The filters nbdcage has: an explicit name -> factory table.  Filters are
// built in (nbdkit's filter .so files are tied to one nbdkit release).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters {

// Every filter's name, sorted.
std::vector<std::string> names();
bool exists(const std::string& name);
// Whether filter `name` takes the parameter KEY (of KEY=VALUE).
bool takesKey(const std::string& name, const std::string& key);
// Builds filter `name` from its KEY=VALUE parameters (split at the first
// '=').  Throws std::runtime_error with a message for the user.
std::unique_ptr<chain::Filter> make(const std::string& name, const std::vector<std::string>& params);

}  // namespace nbdcage::filters
