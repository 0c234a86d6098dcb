// Parameter values the filters share: a size as nbdkit writes it (a
// number, decimal or 0x hex, then k/K, M, G, T, P or E for powers of 1024).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nbdcage::filters {

// Throws std::runtime_error naming `key` for anything else.
inline uint64_t parseSize(const std::string& key, const std::string& v) {
  char* end;
  errno = 0;
  unsigned long long n = v.empty() || v[0] == '-' ? 0 : strtoull(v.c_str(), &end, 0);
  if (v.empty() || v[0] == '-' || errno != 0) throw std::runtime_error(key + " must be a size, not '" + v + "'");
  std::string unit = end;
  static const char* const kUnits = "kMGTPE";
  const char* u = unit.size() == 1 ? strchr(kUnits, unit == "K" ? 'k' : unit[0]) : nullptr;
  if (!unit.empty() && !u) throw std::runtime_error(key + " must be a size, not '" + v + "'");
  unsigned shift = u ? 10 * static_cast<unsigned>(u - kUnits + 1) : 0;
  if (shift && n > (~0ull >> shift)) throw std::runtime_error(key + " is too large: '" + v + "'");
  return n << shift;
}

}  // namespace nbdcage::filters
