#include "filters/unpacked.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace nbdcage::filters {

namespace {

// Reads go to the file on a worker; the result comes back on the loop.
class Stage final : public chain::ChangedInfoStage, public chain::Waker {
 public:
  Stage(chain::Next& next, int fd, uint64_t size, chain::WorkerPool& pool)
      : ChangedInfoStage(next), fd_(fd), pool_(pool) {
    chain::ExportInfo i;
    i.size = size;
    i.canMultiConn = true;  // nothing changes
    i.isRotational = next.info().isRotational;
    i.description = next.info().description;
    info_ = i;
  }
  int wakeFd() const override { return box_.fd(); }
  void onWake() override { box_.runReady(); }
  void submit(const chain::Io& io) override {
    if (io.op != ipc::Op::kRead) return io.done->complete(io, EINVAL, 0);  // never advertised
    int fd = fd_;
    pool_.run(
        [fd, io] {
          uint64_t done = 0;
          while (done < io.count) {
            ssize_t n = pread(fd, io.slot.buf + done, io.count - done, static_cast<off_t>(io.offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return n < 0 ? errno : EIO;
            done += static_cast<uint64_t>(n);
          }
          return 0;
        },
        box_, [io](int error) { io.done->complete(io, error, 0); });
  }

 private:
  const int fd_;
  chain::WorkerPool& pool_;
  chain::Mailbox box_;
};

}  // namespace

UnpackedFilter::UnpackedFilter(const char* name, std::function<std::unique_ptr<Decoder>()> decoder)
    : name_(name), decoder_(std::move(decoder)) {}

UnpackedFilter::~UnpackedFilter() {
  if (fd_ >= 0) close(fd_);
}

kj::Own<chain::Next> UnpackedFilter::openReading(chain::Next& next, const std::string&, bool,
                                                 chain::OpenReader& reader) {
  std::lock_guard<std::mutex> lock(mu_);  // the first open unpacks; the others wait for it
  uint64_t compressed = next.info().size;
  if (fd_ >= 0 && compressed != compressedSize_)
    throw std::runtime_error(std::string(name_) + ": the plugin's size changed; the unpacked copy cannot follow");
  if (fd_ < 0) unpack(compressed, reader);
  return kj::heap<Stage>(next, fd_, size_, pool_);
}

void UnpackedFilter::unpack(uint64_t size, chain::OpenReader& reader) {
  const char* dir = getenv("TMPDIR");
  std::string tmpl = std::string(dir && *dir ? dir : "/var/tmp") + "/nbdcage-" + name_ + "-XXXXXX";
  int fd = mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string(name_) + ": cannot make " + tmpl + ": " + strerror(errno));
  unlink(tmpl.c_str());
  uint64_t written = 0;
  auto out = [&](const uint8_t* data, size_t len) {
    while (len > 0) {
      ssize_t n = pwrite(fd, data, len, static_cast<off_t>(written));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(std::string("writing the unpacked copy: ") + strerror(n < 0 ? errno : EIO));
      data += n, len -= static_cast<size_t>(n), written += static_cast<uint64_t>(n);
    }
  };
  try {
    auto decoder = decoder_();
    std::vector<uint8_t> in(1 << 20);
    for (uint64_t at = 0; at < size;) {
      auto n = static_cast<uint32_t>(std::min<uint64_t>(in.size(), size - at));
      if (int err = reader.read(at, n, in.data())) throw std::runtime_error(std::string("reading the plugin: ") + strerror(err));
      decoder->feed(in.data(), n, out);
      at += n;
    }
    decoder->finish();
  } catch (const std::exception& e) {
    close(fd);
    throw std::runtime_error(std::string(name_) + ": " + e.what());
  }
  fd_ = fd;
  compressedSize_ = size;
  size_ = written;
  fprintf(stderr, "nbdcage: %s: unpacked %llu bytes into %llu\n", name_, static_cast<unsigned long long>(size),
          static_cast<unsigned long long>(written));
}

}  // namespace nbdcage::filters
