#include "filters/xz/xz.h"

#include <lzma.h>

#include <stdexcept>

#include "filters/params.h"
#include "filters/unpacked.h"

namespace nbdcage::filters::xz {

namespace {

class Unxz final : public Decoder {
 public:
  Unxz() {
    if (lzma_stream_decoder(&s_, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) throw std::runtime_error("liblzma: cannot start");
  }
  ~Unxz() override { lzma_end(&s_); }
  void feed(const uint8_t* in, size_t len, const Sink& out) override { run(in, len, LZMA_RUN, out); }
  void finish() override {
    run(nullptr, 0, LZMA_FINISH, [](const uint8_t*, size_t) {});
    if (!ended_) throw std::runtime_error("the xz file ends before its stream does");
  }

 private:
  void run(const uint8_t* in, size_t len, lzma_action action, const Sink& out) {
    s_.next_in = in;
    s_.avail_in = len;
    for (;;) {
      s_.next_out = buf_;
      s_.avail_out = sizeof buf_;
      lzma_ret r = lzma_code(&s_, action);
      out(buf_, sizeof buf_ - s_.avail_out);
      if (r == LZMA_STREAM_END) {
        ended_ = true;
        return;
      }
      if (r != LZMA_OK) throw std::runtime_error("not a valid xz file (liblzma error " + std::to_string(r) + ")");
      if (s_.avail_in == 0 && s_.avail_out != 0) return;
    }
  }
  lzma_stream s_ = LZMA_STREAM_INIT;
  uint8_t buf_[1 << 18];
  bool ended_ = false;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  for (const auto& [key, value] : params) parseSize(key, value);  // checked, then not needed
  return std::make_unique<UnpackedFilter>("xz", [] { return std::make_unique<Unxz>(); });
}

}  // namespace nbdcage::filters::xz
