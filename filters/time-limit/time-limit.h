// time-limit: each connection may last time-limit= (default 60 s, in
// nbdkit_parse_delay's formats) from its open; then its requests fail with
// ESHUTDOWN and the connection is closed, idle or not.  See
// nbdcage-time-limit-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::timelimit {

inline bool takesKey(const std::string& key) { return key == "time-limit"; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::timelimit
