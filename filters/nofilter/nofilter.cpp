#include "filters/nofilter/nofilter.h"

#include <stdexcept>

namespace nbdcage::filters::nofilter {

namespace {

class NoFilter final : public chain::Filter {
 public:
  const char* name() const override { return "nofilter"; }
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  if (!params.empty()) throw std::runtime_error("it takes no parameters");
  return std::make_unique<NoFilter>();
}

}  // namespace nbdcage::filters::nofilter
