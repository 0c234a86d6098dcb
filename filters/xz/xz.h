// xz: serves the decompressed bytes of an xz file, read-only (liblzma;
// concatenated streams too).  See nbdcage-xz-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::xz {

// nbdkit's tuning parameters for its block index; accepted, and unneeded
// here (the whole file is unpacked once).
inline bool takesKey(const std::string& key) { return key == "xz-max-block" || key == "xz-max-depth"; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::xz
