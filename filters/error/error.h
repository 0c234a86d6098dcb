// error: injects errors: each request fails with error= (EIO by default) at
// error-rate= (a probability: 0.1, 10%, 1:10), and only while error-file=
// exists if it is given; error-pread=, error-pwrite=, error-trim=,
// error-zero=, error-extents=, error-cache= (and their -rate= and -file=)
// set them for one kind of request.  See nbdcage-error-filter(1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::filters::error {

inline bool takesKey(const std::string& key) {
  for (const char* k : {"error", "error-rate", "error-file", "error-pread", "error-pread-rate", "error-pread-file", "error-pwrite", "error-pwrite-rate", "error-pwrite-file", "error-trim", "error-trim-rate", "error-trim-file", "error-zero", "error-zero-rate", "error-zero-file", "error-extents", "error-extents-rate", "error-extents-file", "error-cache", "error-cache-rate", "error-cache-file"})
    if (key == k) return true;
  return false;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace nbdcage::filters::error
