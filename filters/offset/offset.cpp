#include "filters/offset/offset.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "filters/params.h"

namespace nbdcage::filters::offset {

namespace {

// Requests move by `offset`; the export is `range` long (checked against
// the plugin's size at each open).  Extents need nothing: their entries are
// lengths from the request's start.
class Stage final : public chain::ChangedInfoStage {
 public:
  Stage(chain::Next& next, uint64_t offset, uint64_t range) : ChangedInfoStage(next), offset_(offset) {
    info_.size = range;
  }
  void submit(const chain::Io& io) override {
    chain::Io down = io;
    if (io.op != ipc::Op::kFlush) down.offset += offset_;  // a flush has no range
    next().submit(down);
  }

 private:
  const uint64_t offset_;
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
    return openStage(next, offset_, range_.value_or(size - offset_));
  }

 private:
  const uint64_t offset_;
  const std::optional<uint64_t> range_;
};

}  // namespace

kj::Own<chain::Next> openStage(chain::Next& next, uint64_t offset, uint64_t range) {
  return kj::heap<Stage>(next, offset, range);
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  uint64_t offset = 0;
  std::optional<uint64_t> range;
  for (const auto& [key, value] : params) {
    if (key == "offset") offset = parseSize(key, value);
    else range = parseSize(key, value);
  }
  return std::make_unique<Offset>(offset, range);
}

}  // namespace nbdcage::filters::offset
