// gzip: serves the decompressed bytes of a gzip file, read-only (zlib;
// concatenated members too).  See nbdcage-gzip-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::gzip {

inline bool takesKey(const std::string&) { return false; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::gzip
