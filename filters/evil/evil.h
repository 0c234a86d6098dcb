// evil: corrupts data read from the plugin, for testing checksums
// (evil=cosmic-rays|stuck-bits, evil-probability=, evil-stuck-probability=,
// evil-seed=).  Writes are not touched.  See nbdcage-evil-filter(1).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::evil {

inline bool takesKey(const std::string& key) {
  return key == "evil" || key == "evil-probability" || key == "evil-stuck-probability" || key == "evil-seed";
}

// The disk is cut into granules of kGranuleBits bits; which bits of a
// granule are stuck, and at what, follows from the seed and the granule's
// number alone, so every read sees the same stuck bits.
inline constexpr uint64_t kGranuleBits = uint64_t{1} << 23;  // 1 MiB
// Calls `stuck(bit, value)` for each stuck bit of granule `g` (bit numbers
// from the disk's start), in order.
void stuckBits(uint64_t seed, double probability, uint64_t g, const std::function<void(uint64_t, bool)>& stuck);

// The gap to the next chosen bit when each is chosen with `p`: geometric,
// from a uniform `u` in (0, 1].
uint64_t gap(double p, double u);

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::evil
