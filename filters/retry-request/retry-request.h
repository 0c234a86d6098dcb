// retry-request: a request that fails is sent again, as it was, after a
// delay, up to a number of times; nothing is reopened
// (retry-request-retries=, retry-request-delay=, retry-request-open=).
// See nbdcage-retry-request-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::retryrequest {

inline bool takesKey(const std::string& key) {
  return key == "retry-request-retries" || key == "retry-request-delay" || key == "retry-request-open";
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::retryrequest
