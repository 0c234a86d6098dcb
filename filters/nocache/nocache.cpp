#include "filters/nocache/nocache.h"

#include <stdexcept>

namespace nbdcage::filters::nocache {

namespace {

enum class Mode { kNone, kNop, kPlugin };

class Stage final : public chain::ChangedInfoStage {
 public:
  Stage(chain::Next& next, Mode mode) : ChangedInfoStage(next), mode_(mode) {
    if (mode_ == Mode::kNone) info_.canCache = 0;           // NBDKIT_CACHE_NONE: not advertised
    else if (mode_ == Mode::kNop) info_.canCache = 2;       // advertised (as native), done as nothing
  }
  void submit(const chain::Io& io) override {
    if (io.op == ipc::Op::kCache && mode_ != Mode::kPlugin) return io.done->complete(io, 0, 0);
    next().submit(io);
  }

 private:
  const Mode mode_;
};

class NoCache final : public chain::Filter {
 public:
  explicit NoCache(Mode mode) : mode_(mode) {}
  const char* name() const override { return "nocache"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, mode_);
  }

 private:
  const Mode mode_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Mode mode = Mode::kNone;
  for (const auto& [key, value] : params) {
    if (value == "none") mode = Mode::kNone;
    else if (value == "nop") mode = Mode::kNop;
    else if (value == "plugin") mode = Mode::kPlugin;
    else if (value == "emulate")
      throw std::runtime_error("cachemode=emulate is not supported yet (none, nop or plugin)");
    else throw std::runtime_error("cachemode must be none, nop or plugin, not '" + value + "'");
  }
  return std::make_unique<NoCache>(mode);
}

}  // namespace nbdcage::filters::nocache
