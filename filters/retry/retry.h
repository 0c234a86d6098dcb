// retry: when a request fails, waits, closes everything below it (the
// plugin's handle, the filters below), opens it again and sends the request
// again (retries=, retry-delay=, retry-exponential=, retry-readonly=).  A
// plugin host that died or missed its deadline is replaced by the
// supervisor, and the reopen lands on the new one: a copy job survives a
// plugin crash.  See nbdcage-retry-filter(1).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::retry {

struct Settings {
  unsigned retries = 5;                            // reopens a request may wait through
  std::chrono::nanoseconds delay = std::chrono::seconds(2);  // before the first
  bool exponential = true;                         // doubled before each further one
  bool readonly = false;                           // reopen read-only after a failure
};

// How long to wait before reopen number `attempt` (1, 2, ...) of a run of
// failures.
std::chrono::nanoseconds delayBefore(const Settings& s, unsigned attempt);

// Whether the export as reopened can take every request the client was told
// it could send (`readonly`: the reopen was read-only, so writes are
// refused by the filter itself).  Empty, or what changed.
std::string changed(const chain::ExportInfo& before, const chain::ExportInfo& after, bool readonly);

inline bool takesKey(const std::string& key) {
  return key == "retries" || key == "retry-delay" || key == "retry-exponential" || key == "retry-readonly";
}

Settings parse(const std::vector<std::pair<std::string, std::string>>& params);
std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::retry
