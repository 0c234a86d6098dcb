// cow: a writable overlay over a plugin opened read-only.  Writes, zeroes
// and trims go to a temporary file (deleted at once; in $TMPDIR, else
// /var/tmp), in blocks of cow-block-size= (default 64K); reads take each
// block from the overlay if it is there, else from the plugin.  Every
// connection sees the same overlay, and it is gone when nbdcage exits.
// The overlay's disk I/O runs on the filter's worker threads, never on a
// connection's loop.  See nbdcage-cow-filter(1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::cow {

inline bool takesKey(const std::string& key) {
  return key == "cow-block-size" || key == "cow-on-cache" || key == "cow-on-read";
}

// The blocks a request touches, and which of its ends are partial:
// [first, last] and whether the first/last block is only partly covered.
struct Blocks {
  uint64_t first, last;
  bool partialFirst, partialLast;
};
// `size` is the disk's: its last block may be short, and a request that
// reaches the end covers it whole.
Blocks blocksOf(uint64_t offset, uint64_t count, uint32_t blockSize, uint64_t size);

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::cow
