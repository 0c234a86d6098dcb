#include "filters/noextents/noextents.h"

#include <stdexcept>

namespace nbdcage::filters::noextents {

namespace {

class Stage final : public chain::ChangedInfoStage {
 public:
  explicit Stage(chain::Next& next) : ChangedInfoStage(next) { info_.canExtents = false; }
};

class NoExtents final : public chain::Filter {
 public:
  const char* name() const override { return "noextents"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override { return kj::heap<Stage>(next); }
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  if (!params.empty()) throw std::runtime_error("it takes no parameters");
  return std::make_unique<NoExtents>();
}

}  // namespace nbdcage::filters::noextents
