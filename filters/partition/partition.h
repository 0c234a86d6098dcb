// partition: serves one partition of a partitioned disk (partition=N,
// from 1), found in its MBR (primary, and logical ones from 5 in an
// extended partition) or its GPT, read from the plugin at each open.  See
// nbdcage-partition-filter(1).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::partition {

struct Range {
  uint64_t offset, length;  // bytes
};

// Reads `count` bytes at `offset` of the disk into `out`: 0 or an errno.
using ReadFn = std::function<int(uint64_t offset, uint32_t count, uint8_t* out)>;

// Partition `number` of the `diskSize`-byte disk (512-byte sectors).
// Throws std::runtime_error saying why not (no table, no such partition, a
// partition past the disk's end, a read that failed).
Range find(const ReadFn& read, uint64_t diskSize, unsigned number);

inline bool takesKey(const std::string& key) { return key == "partition"; }

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::partition
