#include "filters/registry.h"

#include <stdexcept>

#include "filters/evil/evil.h"
#include "filters/exitlast/exitlast.h"
#include "filters/checkwrite/checkwrite.h"
#include "filters/count/count.h"
#include "filters/cow/cow.h"
#include "filters/delay/delay.h"
#include "filters/error/error.h"
#include "filters/exitwhen/exitwhen.h"
#include "filters/fua/fua.h"
#include "filters/gzip/gzip.h"
#include "filters/ip/ip.h"
#include "filters/limit/limit.h"
#include "filters/log/log.h"
#include "filters/multi-conn/multi-conn.h"
#include "filters/nocache/nocache.h"
#include "filters/noextents/noextents.h"
#include "filters/nofilter/nofilter.h"
#include "filters/noparallel/noparallel.h"
#include "filters/nozero/nozero.h"
#include "filters/offset/offset.h"
#include "filters/protect/protect.h"
#include "filters/rate/rate.h"
#include "filters/readonly/readonly.h"
#include "filters/rotational/rotational.h"
#include "filters/stats/stats.h"
#include "filters/swab/swab.h"
#include "filters/time-limit/time-limit.h"
#include "filters/truncate/truncate.h"
#include "filters/xz/xz.h"
#include "filters/partition/partition.h"
#include "filters/readahead/readahead.h"
#include "filters/retry/retry.h"
#include "filters/retry-request/retry-request.h"

namespace nbdcage::filters {

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

struct Entry {
  const char* name;
  bool (*takesKey)(const std::string&);
  std::unique_ptr<chain::Filter> (*make)(const Params&);
};

const Entry kFilters[] = {
    {"checkwrite", checkwrite::takesKey, checkwrite::make},
    {"count", count::takesKey, count::make},
    {"cow", cow::takesKey, cow::make},
    {"delay", delay::takesKey, delay::make},
    {"error", error::takesKey, error::make},
    {"evil", evil::takesKey, evil::make},
    {"exitlast", exitlast::takesKey, exitlast::make},
    {"exitwhen", exitwhen::takesKey, exitwhen::make},
    {"fua", fua::takesKey, fua::make},
    {"gzip", gzip::takesKey, gzip::make},
    {"ip", ip::takesKey, ip::make},
    {"limit", limit::takesKey, limit::make},
    {"log", log::takesKey, log::make},
    {"multi-conn", multiconn::takesKey, multiconn::make},
    {"nocache", nocache::takesKey, nocache::make},
    {"noextents", noextents::takesKey, noextents::make},
    {"nofilter", nofilter::takesKey, nofilter::make},
    {"noparallel", noparallel::takesKey, noparallel::make},
    {"nozero", nozero::takesKey, nozero::make},
    {"offset", offset::takesKey, offset::make},
    {"partition", partition::takesKey, partition::make},
    {"protect", protect::takesKey, protect::make},
    {"rate", rate::takesKey, rate::make},
    {"readonly", readonly::takesKey, readonly::make},
    {"retry", retry::takesKey, retry::make},
    {"retry-request", retryrequest::takesKey, retryrequest::make},
    {"rotational", rotational::takesKey, rotational::make},
    {"stats", stats::takesKey, stats::make},
    {"swab", swab::takesKey, swab::make},
    {"time-limit", timelimit::takesKey, timelimit::make},
    {"truncate", truncate::takesKey, truncate::make},
    {"xz", xz::takesKey, xz::make},
    {"readahead", readahead::takesKey, readahead::make},
};

const Entry* find(const std::string& name) {
  for (const auto& e : kFilters)
    if (name == e.name) return &e;
  return nullptr;
}

}  // namespace

std::vector<std::string> names() {
  std::vector<std::string> v;
  for (const auto& e : kFilters) v.emplace_back(e.name);
  return v;
}

bool exists(const std::string& name) { return find(name) != nullptr; }

bool takesKey(const std::string& name, const std::string& key) {
  const Entry* e = find(name);
  return e && e->takesKey(key);
}

std::unique_ptr<chain::Filter> make(const std::string& name, const std::vector<std::string>& params) {
  const Entry* e = find(name);
  if (!e) throw std::runtime_error("unknown filter '" + name + "'");
  Params split;
  for (const auto& p : params) {
    auto eq = p.find('=');
    split.emplace_back(p.substr(0, eq), eq == std::string::npos ? "" : p.substr(eq + 1));
  }
  try {
    return e->make(split);
  } catch (const std::runtime_error& err) {
    throw std::runtime_error(std::string(e->name) + ": " + err.what());
  }
}

}  // namespace nbdcage::filters
