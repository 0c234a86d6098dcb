// Parameter values the filters share, written as nbdkit writes them.
#pragma once

#include <chrono>
#include <cmath>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <strings.h>

namespace nbdcage::filters {

// A size: a number, decimal or 0x hex, then k/K, M, G, T, P or E for
// powers of 1024.  Throws std::runtime_error naming `key` for anything else.
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

// A count from 0 to `max`, in decimal.
inline unsigned parseCount(const std::string& key, const std::string& v, unsigned max) {
  char* end;
  errno = 0;
  unsigned long n = v.empty() || v[0] == '-' ? 0 : strtoul(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end || errno || n > max)
    throw std::runtime_error(key + " must be a number from 0 to " + std::to_string(max) + ", not '" + v + "'");
  return static_cast<unsigned>(n);
}

// A delay as nbdkit_parse_delay reads it: "1.5", "2s", "100ms", "10us",
// "10\u03bcs", "500ns"; at most a day.
inline std::chrono::nanoseconds parseDelay(const std::string& key, const std::string& v) {
  char* end;
  double n = v.empty() ? -1 : strtod(v.c_str(), &end);
  std::string unit = v.empty() ? "" : end;
  double scale = unit.empty() || unit == "s" ? 1 : unit == "ms" ? 1e-3 : unit == "us" || unit == "\u03bcs" ? 1e-6
                 : unit == "ns" ? 1e-9 : -1;
  if (n < 0 || scale < 0 || n * scale > 86400)
    throw std::runtime_error(key + " must be a delay (1.5, 2s, 100ms, 10us, 500ns; at most a day), not '" + v + "'");
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(n * scale));
}

// A probability as nbdkit_parse_probability reads it: 0.1, 1e-1, 10%,
// 1:10, 1/10.
inline double parseProbability(const std::string& key, const std::string& v) {
  char* end;
  errno = 0;
  double a = v.empty() ? -1 : strtod(v.c_str(), &end);
  bool ok = !v.empty() && errno == 0 && end != v.c_str();
  if (ok && *end == '%') {
    a /= 100, ++end;
  } else if (ok && (*end == ':' || *end == '/')) {
    const char* b0 = end + 1;
    double b = strtod(b0, &end);
    ok = end != b0 && b > 0;
    a = ok ? a / b : 0;
  }
  if (!ok || *end != '\0' || !std::isfinite(a) || a < 0 || a > 1)
    throw std::runtime_error(key + " must be a probability from 0 to 1 (0.1, 10%, 1:10), not '" + v + "'");
  return a;
}

// A boolean as nbdkit_parse_bool reads it.
inline bool parseBool(const std::string& key, const std::string& v) {
  for (const char* t : {"1", "true", "yes", "on"})
    if (strcasecmp(v.c_str(), t) == 0) return true;
  for (const char* f : {"0", "false", "no", "off"})
    if (strcasecmp(v.c_str(), f) == 0) return false;
  throw std::runtime_error(key + " must be true or false (yes/no, on/off, 1/0), not '" + v + "'");
}

}  // namespace nbdcage::filters
