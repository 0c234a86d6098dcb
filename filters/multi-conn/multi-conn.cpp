#include "filters/multi-conn/multi-conn.h"

#include <stdexcept>

namespace nbdcage::filters::multiconn {

namespace {

enum class Mode { kAuto, kEnable, kDisable };

class Stage final : public chain::ChangedInfoStage {
 public:
  Stage(chain::Next& next, Mode mode) : ChangedInfoStage(next) {
    if (mode == Mode::kEnable) info_.canMultiConn = true;
    if (mode == Mode::kDisable) info_.canMultiConn = false;
  }
};

class MultiConn final : public chain::Filter {
 public:
  explicit MultiConn(Mode m) : mode_(m) {}
  const char* name() const override { return "multi-conn"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, mode_);
  }

 private:
  const Mode mode_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Mode mode = Mode::kAuto;
  for (const auto& [key, v] : params) {
    if (v == "auto" || v == "plugin") mode = Mode::kAuto;
    else if (v == "enable" || v == "unsafe") mode = Mode::kEnable;
    else if (v == "disable") mode = Mode::kDisable;
    else if (v == "emulate")
      throw std::runtime_error("multi-conn-mode=emulate is not supported yet (auto, enable, unsafe or disable)");
    else throw std::runtime_error("multi-conn-mode must be auto, enable, unsafe or disable, not '" + v + "'");
  }
  return std::make_unique<MultiConn>(mode);
}

}  // namespace nbdcage::filters::multiconn
