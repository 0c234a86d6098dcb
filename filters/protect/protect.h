// protect: write-protects ranges of the plugin (protect=START-END, or
// protect=~START-END for all but that range; given any number of times).
// A write, zero or trim that would change protected bytes fails with EPERM;
// one that leaves them as they are goes through.  See
// nbdcage-protect-filter(1).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::protect {

inline bool takesKey(const std::string& key) { return key == "protect"; }

// One protect= as given: [start, end] inclusive, either end left open
// (nullopt: the disk's start or end), complemented or not.
struct Rule {
  std::optional<uint64_t> start, end;
  bool complement = false;
};
Rule parseRule(const std::string& value);  // throws std::runtime_error

struct Range {
  uint64_t start, end;  // [start, end)
};
// The protected ranges of a `size`-byte disk: sorted, merged, non-empty.
std::vector<Range> protectedRanges(const std::vector<Rule>& rules, uint64_t size);

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::protect
