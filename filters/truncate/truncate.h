// truncate: changes the size the client sees: truncate=SIZE, or the
// plugin's size rounded up (round-up=N) or down (round-down=N).  Past the
// plugin's end the disk reads as zeroes (extents: a hole), takes zeroes
// and trims, and refuses other writes with ENOSPC.  See
// nbdcage-truncate-filter(1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::truncate {

inline bool takesKey(const std::string& key) { return key == "truncate" || key == "round-up" || key == "round-down"; }

// The size the client sees, for a plugin of `real` bytes.
struct Sizing {
  uint64_t truncate = 0, roundUp = 0, roundDown = 0;  // 0: not given
  bool fixed = false;                                 // truncate= given
  uint64_t apply(uint64_t real) const;
};

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::truncate
