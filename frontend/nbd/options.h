// Pure parsers for the payloads of NBD options (no I/O), so that the rules
// about lengths live in one place and are unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace nbdcage::nbd {

// NBD_OPT_INFO / NBD_OPT_GO: u32 namelen, name, u16 n, n x u16 info.
struct InfoRequest {
  std::string name;
  std::vector<uint16_t> items;
};
std::optional<InfoRequest> parseInfoRequest(std::span<const uint8_t> data);

// NBD_OPT_LIST_META_CONTEXT / SET_META_CONTEXT: u32 namelen, name,
// u32 nq, nq x (u32 len, query).
struct MetaContextRequest {
  std::string exportName;
  std::vector<std::string> queries;
};
std::optional<MetaContextRequest> parseMetaContextRequest(std::span<const uint8_t> data);

// What a meta-context query selects among the contexts we serve
// (only base:allocation).  `listing`: LIST semantics, where "base:" is a
// wildcard; SET requires the full name.
bool queryMatchesBaseAllocation(const std::string& query, bool listing);

}  // namespace nbdcage::nbd
