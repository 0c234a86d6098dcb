// log: writes every client transaction to logfile= (logappend= to add to
// it), in nbdkit's log file format: a timestamp, the connection, the
// action and its parameters, then its result.  See nbdcage-log-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::log {

inline bool takesKey(const std::string& key) { return key == "logfile" || key == "logappend" || key == "logscript"; }

// A string as the log quotes it: in double quotes, with \ " $ ` escaped.
std::string quoted(const std::string& s);

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::log
