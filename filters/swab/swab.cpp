#include "filters/swab/swab.h"

#include <algorithm>
#include <cerrno>
#include <stdexcept>

namespace nbdcage::filters::swab {

namespace {

// Reverses every `bytes`-byte word of buf[0, len).
void swap(uint8_t* buf, uint32_t len, unsigned bytes) {
  for (uint32_t i = 0; i + bytes <= len; i += bytes) std::reverse(buf + i, buf + i + bytes);
}

// Reads are swapped in their slot when they complete; writes are swapped in
// their slot before they go down (the slot is the request's own), and back
// after, in case the client's data is looked at again.  Requests must be
// whole words.
class Stage final : public chain::ChangedInfoStage, private chain::Completer {
 public:
  Stage(chain::Next& next, unsigned bytes) : ChangedInfoStage(next), bytes_(bytes) {
    info_.blockMin = std::max<uint32_t>(info_.blockMin, bytes_);
    if (info_.blockPreferred < info_.blockMin) info_.blockPreferred = info_.blockMin;
  }
  void submit(const chain::Io& io) override {
    bool data = io.op == ipc::Op::kRead || io.op == ipc::Op::kWrite;
    if (!data) return next().submit(io);
    if (io.offset % bytes_ || io.count % bytes_) return io.done->complete(io, EINVAL, 0);
    if (io.op == ipc::Op::kWrite) swap(io.slot.buf, io.count, bytes_);
    up_[io.slot.tag] = io.done;
    chain::Io down = io;
    down.done = this;
    next().submit(down);
  }

 private:
  void complete(const chain::Io& io, int error, uint32_t extents) override {
    if (io.op == ipc::Op::kRead ? error == 0 : true) swap(io.slot.buf, io.count, bytes_);
    chain::Io up = io;
    up.done = up_[io.slot.tag];
    up.done->complete(up, error, extents);
  }
  const unsigned bytes_;
  chain::Completer* up_[ipc::kRingEntries] = {};
};

class Swab final : public chain::Filter {
 public:
  explicit Swab(unsigned bytes) : bytes_(bytes) {}
  const char* name() const override { return "swab"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, bytes_);
  }

 private:
  const unsigned bytes_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  unsigned bits = 16;
  for (const auto& [key, v] : params) {
    if (v == "8" || v == "16" || v == "32" || v == "64") bits = static_cast<unsigned>(std::stoul(v));
    else throw std::runtime_error("swab-bits must be 8, 16, 32 or 64, not '" + v + "'");
  }
  return std::make_unique<Swab>(bits / 8);
}

}  // namespace nbdcage::filters::swab
