#include "filters/rotational/rotational.h"

#include "filters/params.h"

namespace nbdcage::filters::rotational {

namespace {

class Stage final : public chain::ChangedInfoStage {
 public:
  Stage(chain::Next& next, bool rotational) : ChangedInfoStage(next) { info_.isRotational = rotational; }
};

class Rotational final : public chain::Filter {
 public:
  explicit Rotational(bool r) : rotational_(r) {}
  const char* name() const override { return "rotational"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, rotational_);
  }

 private:
  const bool rotational_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  bool r = true;
  for (const auto& [key, v] : params) {
    r = parseBool(key, v);
  }
  return std::make_unique<Rotational>(r);
}

}  // namespace nbdcage::filters::rotational
