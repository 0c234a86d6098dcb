#include "filters/offset/offset.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace nbdcage::filters::offset {

namespace {

// Requests move by `offset`; the export is `range` long (checked against
// the plugin's size at each open).  Extents need nothing: their entries are
// lengths from the request's start.
class Stage final : public chain::FilterStage {
 public:
  Stage(chain::Next& next, uint64_t offset, uint64_t range) : FilterStage(next), offset_(offset), info_(next.info()) {
    info_.size = range;
  }
  const chain::ExportInfo& info() const override { return info_; }
  void submit(const chain::Io& io) override {
    chain::Io down = io;
    down.offset += offset_;
    next().submit(down);
  }

 private:
  const uint64_t offset_;
  chain::ExportInfo info_;
};

class Offset final : public chain::Filter {
 public:
  Offset(uint64_t offset, std::optional<uint64_t> range) : offset_(offset), range_(range) {}
  const char* name() const override { return "offset"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    uint64_t size = next.info().size;
    if (offset_ > size || (range_ && *range_ > size - offset_))
      throw std::runtime_error("offset: offset=" + std::to_string(offset_) + (range_ ? " range=" + std::to_string(*range_) : "") +
                               " lies beyond the end of the plugin's " + std::to_string(size) + " bytes");
    return kj::heap<Stage>(next, offset_, range_.value_or(size - offset_));
  }

 private:
  const uint64_t offset_;
  const std::optional<uint64_t> range_;
};

// A size as nbdkit writes them: a number with k, M, G, T, P, E (powers of 1024).
uint64_t size(const std::string& key, const std::string& v) {
  char* end;
  errno = 0;
  unsigned long long n = v.empty() || v[0] == '-' ? 0 : strtoull(v.c_str(), &end, 0);
  if (v.empty() || v[0] == '-' || errno != 0) throw std::runtime_error(key + " must be a size, not '" + v + "'");
  std::string unit = end;
  static const char* const kUnits = "kMGTPE";
  unsigned shift = 0;
  if (unit == "K") shift = 10;
  else if (unit.size() == 1) {
    const char* u = strchr(kUnits, unit[0]);
    if (!u) throw std::runtime_error(key + " must be a size, not '" + v + "'");
    shift = 10 * static_cast<unsigned>(u - kUnits + 1);
  } else if (!unit.empty()) {
    throw std::runtime_error(key + " must be a size, not '" + v + "'");
  }
  if (shift && n > (~0ull >> shift)) throw std::runtime_error(key + " is too large: '" + v + "'");
  return n << shift;
}

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  uint64_t offset = 0;
  std::optional<uint64_t> range;
  for (const auto& [key, value] : params) {
    if (key == "offset") offset = size(key, value);
    else range = size(key, value);
  }
  return std::make_unique<Offset>(offset, range);
}

}  // namespace nbdcage::filters::offset
