#include "filters/fua/fua.h"

#include <stdexcept>

namespace nbdcage::filters::fua {

namespace {

enum class Mode { kNone, kEmulate, kNative, kForce, kPass, kDiscard };
constexpr uint8_t kFuaNone = 0, kFuaEmulate = 1, kFuaNative = 2;

bool writes(ipc::Op op) { return op == ipc::Op::kWrite || op == ipc::Op::kZero || op == ipc::Op::kTrim; }

class Stage final : public chain::ChangedInfoStage, private chain::Completer {
 public:
  Stage(chain::Next& next, Mode mode) : ChangedInfoStage(next), mode_(mode) {
    switch (mode_) {
      case Mode::kNone: info_.canFua = kFuaNone; break;
      case Mode::kEmulate: info_.canFua = kFuaEmulate; break;
      case Mode::kNative: case Mode::kForce: case Mode::kDiscard: info_.canFua = kFuaNative; break;
      case Mode::kPass: break;
    }
  }

  void submit(const chain::Io& io) override {
    bool fua = io.flags & ipc::kFlagFua;
    chain::Io down = io;
    switch (mode_) {
      case Mode::kPass: case Mode::kNative: return next().submit(io);
      case Mode::kNone: down.flags &= static_cast<uint16_t>(~ipc::kFlagFua); return next().submit(down);
      case Mode::kDiscard:
        if (io.op == ipc::Op::kFlush) return io.done->complete(io, 0, 0);
        down.flags &= static_cast<uint16_t>(~ipc::kFlagFua);
        return next().submit(down);
      case Mode::kForce:
        if (io.op == ipc::Op::kFlush) return io.done->complete(io, 0, 0);  // every write was durable already
        if (writes(io.op)) down.flags |= ipc::kFlagFua;
        return next().submit(down);
      case Mode::kEmulate:
        if (!fua || !writes(io.op)) return next().submit(io);
        // The write without FUA, then a flush in the same slot (it is ours
        // again once the write completed), then the client's answer.
        up_[io.slot.tag] = {io, false};
        down.flags &= static_cast<uint16_t>(~ipc::kFlagFua);
        down.done = this;
        return next().submit(down);
    }
  }

 private:
  void complete(const chain::Io& io, int error, uint32_t extents) override {
    Pending& p = up_[io.slot.tag];
    if (error != 0 || p.flushed) return p.io.done->complete(p.io, error, extents);
    p.flushed = true;
    chain::Io flush = io;
    flush.op = ipc::Op::kFlush;
    flush.flags = 0;
    flush.offset = 0;
    flush.count = 0;
    next().submit(flush);
  }
  struct Pending {
    chain::Io io;
    bool flushed;
  };
  const Mode mode_;
  Pending up_[ipc::kRingEntries] = {};
};

class Fua final : public chain::Filter {
 public:
  explicit Fua(Mode mode) : mode_(mode) {}
  const char* name() const override { return "fua"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    const auto& below = next.info();
    if (mode_ == Mode::kEmulate && !below.canFlush)
      throw std::runtime_error("fua: fuamode=emulate needs a plugin that can flush, and this one cannot");
    if ((mode_ == Mode::kNative || mode_ == Mode::kForce) && below.canFua == kFuaNone)
      throw std::runtime_error("fua: fuamode=native and force need a plugin with FUA, and this one has none");
    return kj::heap<Stage>(next, mode_);
  }

 private:
  const Mode mode_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Mode mode = Mode::kNone;
  for (const auto& [key, v] : params) {
    if (v == "none") mode = Mode::kNone;
    else if (v == "emulate") mode = Mode::kEmulate;
    else if (v == "native") mode = Mode::kNative;
    else if (v == "force") mode = Mode::kForce;
    else if (v == "pass") mode = Mode::kPass;
    else if (v == "discard") mode = Mode::kDiscard;
    else throw std::runtime_error("fuamode must be none, emulate, native, force, pass or discard, not '" + v + "'");
  }
  return std::make_unique<Fua>(mode);
}

}  // namespace nbdcage::filters::fua
