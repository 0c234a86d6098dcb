// What the decompressing filters (gzip, xz) share: a read-only export whose
// bytes are the plugin's, decompressed once, at the first open, into a
// temporary file (deleted at once; in $TMPDIR, else /var/tmp) that every
// connection then reads on the filter's worker threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "frontend/chain/filter.h"
#include "frontend/chain/worker.h"

namespace nbdcage::filters {

// One compressed stream's decoder.
class Decoder {
 public:
  using Sink = std::function<void(const uint8_t* data, size_t len)>;
  virtual ~Decoder() = default;
  // Decodes the next piece of input; what comes out goes to `out`.  Throws
  // std::runtime_error on corrupt input.
  virtual void feed(const uint8_t* in, size_t len, const Sink& out) = 0;
  // The input ended: throws if the stream did not.
  virtual void finish() = 0;
};

class UnpackedFilter : public chain::Filter {
 public:
  UnpackedFilter(const char* name, std::function<std::unique_ptr<Decoder>()> decoder);
  ~UnpackedFilter() override;
  const char* name() const override { return name_; }
  bool writesNothingBelow() const override { return true; }
  kj::Own<chain::Next> openReading(chain::Next& next, const std::string& exportName, bool readonly,
                                   chain::OpenReader& reader) override;

 private:
  void unpack(uint64_t size, chain::OpenReader& reader);  // under mu_

  const char* name_;
  std::function<std::unique_ptr<Decoder>()> decoder_;
  std::mutex mu_;
  int fd_ = -1;                 // the decompressed bytes, once unpacked
  uint64_t compressedSize_ = 0;
  uint64_t size_ = 0;
  chain::WorkerPool pool_{2};
};

}  // namespace nbdcage::filters
