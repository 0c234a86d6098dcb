// readahead: when a client reads sequentially, read ahead of it in growing
// windows and answer its next reads from memory.  See
// nbdcage-readahead-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::readahead {

// It takes no parameters.
inline bool takesKey(const std::string&) { return false; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

// One handle's stage; exposed for unit tests.
kj::Own<chain::Next> openStage(chain::Next& next);

}  // namespace nbdcage::filters::readahead
