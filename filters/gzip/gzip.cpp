#include "filters/gzip/gzip.h"

#include <zlib.h>

#include <stdexcept>

#include "filters/unpacked.h"

namespace nbdcage::filters::gzip {

namespace {

class Inflater final : public Decoder {
 public:
  Inflater() {
    if (inflateInit2(&z_, 15 + 16) != Z_OK) throw std::runtime_error("zlib: cannot start");
  }
  ~Inflater() override { inflateEnd(&z_); }
  void feed(const uint8_t* in, size_t len, const Sink& out) override {
    z_.next_in = const_cast<Bytef*>(in);
    z_.avail_in = static_cast<uInt>(len);
    while (z_.avail_in > 0) {
      if (ended_) {  // another member follows
        inflateReset(&z_);
        ended_ = false;
      }
      z_.next_out = buf_;
      z_.avail_out = sizeof buf_;
      int r = inflate(&z_, Z_NO_FLUSH);
      if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
        throw std::runtime_error(std::string("not a valid gzip file: ") + (z_.msg ? z_.msg : "corrupt data"));
      out(buf_, sizeof buf_ - z_.avail_out);
      if (r == Z_STREAM_END) ended_ = true;
      else if (r == Z_BUF_ERROR && z_.avail_out != 0) break;
    }
    started_ = true;
  }
  void finish() override {
    if (!started_ || !ended_) throw std::runtime_error("the gzip file ends before its stream does");
  }

 private:
  z_stream z_{};
  Bytef buf_[1 << 18];
  bool ended_ = false, started_ = false;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  if (!params.empty()) throw std::runtime_error("gzip takes no parameters");
  return std::make_unique<UnpackedFilter>("gzip", [] { return std::make_unique<Inflater>(); });
}

}  // namespace nbdcage::filters::gzip
