// stats: counts operations, bytes and the time they took below, per kind,
// with a histogram of request sizes and offset alignments, and writes them
// to statsfile= when nbdcage exits (statsappend=, statsthreshold=).  See
// nbdcage-stats-filter(1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::stats {

inline bool takesKey(const std::string& key) {
  return key == "statsfile" || key == "statsappend" || key == "statsthreshold";
}

// The size class of a request, as nbdkit's stats filter groups them (the
// highest bit of its length: 4096 and 8191 -> 12) and the alignment of its
// offset (trailing zero bits; 0 is aligned to 64 bits).
unsigned sizeBits(uint64_t count);
unsigned alignBits(uint64_t offset);
// "1.50 KiB", "3.00 GiB", "12 bytes".
std::string humanBytes(double bytes);

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::stats
