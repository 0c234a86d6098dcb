#include "filters/nozero/nozero.h"

#include <cerrno>
#include <stdexcept>

namespace nbdcage::filters::nozero {

namespace {

enum class Zero { kNone, kNoTrim, kPlugin };
enum class Fast { kDefault, kNone, kSlow, kIgnore };

class Stage final : public chain::ChangedInfoStage {
 public:
  Stage(chain::Next& next, Zero zero, Fast fast) : ChangedInfoStage(next), zero_(zero), fast_(fast) {
    if (zero_ == Zero::kNone) info_.canZero = info_.canFastZero = false;
    if (fast_ == Fast::kNone) info_.canFastZero = false;
    if (fast_ == Fast::kSlow || fast_ == Fast::kIgnore) info_.canFastZero = info_.canZero;
  }
  void submit(const chain::Io& io) override {
    if (io.op != ipc::Op::kZero) return next().submit(io);
    chain::Io down = io;
    if (zero_ == Zero::kNoTrim) down.flags &= static_cast<uint16_t>(~ipc::kFlagMayTrim);
    if (io.flags & ipc::kFlagFastZero) {
      if (fast_ == Fast::kSlow) return io.done->complete(io, ENOTSUP, 0);  // "not faster than writing"
      if (fast_ == Fast::kIgnore) down.flags &= static_cast<uint16_t>(~ipc::kFlagFastZero);
    }
    next().submit(down);
  }

 private:
  const Zero zero_;
  const Fast fast_;
};

class NoZero final : public chain::Filter {
 public:
  NoZero(Zero zero, Fast fast) : zero_(zero), fast_(fast) {}
  const char* name() const override { return "nozero"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, zero_, fast_);
  }

 private:
  const Zero zero_;
  const Fast fast_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Zero zero = Zero::kNone;
  Fast fast = Fast::kDefault;
  for (const auto& [key, value] : params) {
    if (key == "zeromode") {
      if (value == "none") zero = Zero::kNone;
      else if (value == "notrim") zero = Zero::kNoTrim;
      else if (value == "plugin") zero = Zero::kPlugin;
      else if (value == "emulate")
        throw std::runtime_error("zeromode=emulate is not supported yet: zeromode=none makes clients write zeroes");
      else throw std::runtime_error("zeromode must be none, notrim or plugin, not '" + value + "'");
    } else {
      if (value == "default") fast = Fast::kDefault;
      else if (value == "none") fast = Fast::kNone;
      else if (value == "slow") fast = Fast::kSlow;
      else if (value == "ignore") fast = Fast::kIgnore;
      else throw std::runtime_error("fastzeromode must be default, none, slow or ignore, not '" + value + "'");
    }
  }
  return std::make_unique<NoZero>(zero, fast);
}

}  // namespace nbdcage::filters::nozero
