#include "filters/checkwrite/checkwrite.h"

#include <cerrno>
#include <stdexcept>

#include "filters/compare.h"

namespace nbdcage::filters::checkwrite {

namespace {

class Checkwrite final : public chain::Filter {
 public:
  const char* name() const override { return "checkwrite"; }
  bool writesNothingBelow() const override { return true; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    ComparePolicy policy;
    policy.ranges = [](const chain::Io& io) { return std::vector<ByteRange>{{io.offset, io.offset + io.count}}; };
    policy.mismatch = EIO;
    policy.passMatching = false;  // nothing is ever written
    policy.refuseTrim = false;    // a trim is checked as zeroes: sparseness aside
    auto stage = openComparing(next, std::move(policy), "checkwrite");
    chain::ExportInfo& i = stage->info();
    i.canWrite = i.canTrim = i.canZero = i.canFlush = true;
    i.canFua = 2;           // nothing to make durable
    i.canFastZero = false;  // checking is not fast
    return stage;
  }
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  if (!params.empty()) throw std::runtime_error("checkwrite takes no parameters");
  return std::make_unique<Checkwrite>();
}

}  // namespace nbdcage::filters::checkwrite
