#include "filters/cow/cow.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>

#include "filters/params.h"
#include "frontend/chain/worker.h"

namespace nbdcage::filters::cow {

Blocks blocksOf(uint64_t offset, uint64_t count, uint32_t blockSize, uint64_t size) {
  uint64_t end = offset + count;
  Blocks b{offset / blockSize, (end - 1) / blockSize, false, false};
  uint64_t firstStart = b.first * blockSize, firstEnd = std::min(firstStart + blockSize, size);
  b.partialFirst = offset != firstStart || end < firstEnd;
  uint64_t lastEnd = std::min((b.last + 1) * blockSize, size);
  b.partialLast = b.last != b.first && end < lastEnd;
  return b;
}

namespace {

enum : uint8_t { kAbsent, kData, kZero };  // where a block's contents are

int preadFull(int fd, uint8_t* buf, uint64_t len, uint64_t at) {
  while (len > 0) {
    ssize_t n = pread(fd, buf, len, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    buf += n, len -= static_cast<uint64_t>(n), at += static_cast<uint64_t>(n);
  }
  return 0;
}

int pwriteFull(int fd, const uint8_t* buf, uint64_t len, uint64_t at) {
  while (len > 0) {
    ssize_t n = pwrite(fd, buf, len, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    buf += n, len -= static_cast<uint64_t>(n), at += static_cast<uint64_t>(n);
  }
  return 0;
}

// The overlay: a sparse file at the disk's own offsets, and each block's
// state.  A block only ever leaves kAbsent (the plugin's data never
// changes), so a decision taken on the loop that a block is absent holds
// until the worker looks again under the block's lock.
class Overlay {
 public:
  Overlay(int fd, uint32_t blockSize) : fd_(fd), bs_(blockSize) {}
  ~Overlay() { close(fd_); }
  uint32_t blockSize() const { return bs_; }

  // The first open sizes it; later ones must see the same disk.
  void sizeTo(uint64_t size) {
    std::lock_guard<std::mutex> lock(stateMu_);
    if (sized_) {
      if (size != size_)
        throw std::runtime_error("cow: the plugin's size changed from " + std::to_string(size_) + " to " +
                                 std::to_string(size) + " bytes; the overlay cannot follow");
      return;
    }
    if (ftruncate(fd_, static_cast<off_t>(size)) != 0)
      throw std::runtime_error(std::string("cow: sizing the overlay: ") + strerror(errno));
    size_ = size;
    state_.assign((size + bs_ - 1) / bs_, kAbsent);
    sized_ = true;
  }
  uint64_t size() const { return size_; }

  uint8_t state(uint64_t block) {
    std::lock_guard<std::mutex> lock(stateMu_);
    return state_[block];
  }
  bool anyAbsent(uint64_t first, uint64_t last) {
    std::lock_guard<std::mutex> lock(stateMu_);
    for (uint64_t b = first; b <= last; ++b)
      if (state_[b] == kAbsent) return true;
    return false;
  }

  // Worker: puts the overlay's blocks of [offset, offset + count) into
  // `buf` (which holds the plugin's data where blocks are absent).
  int patch(uint8_t* buf, uint64_t offset, uint32_t count) {
    Blocks bl = blocksOf(offset, count, bs_, size_);
    for (uint64_t b = bl.first; b <= bl.last; ++b) {
      uint64_t from = std::max(offset, b * bs_), to = std::min(offset + count, blockEnd(b));
      std::lock_guard<std::mutex> lock(stripe(b));
      uint8_t st = state(b);
      if (st == kData) {
        if (int err = preadFull(fd_, buf + (from - offset), to - from, from)) return err;
      } else if (st == kZero) {
        memset(buf + (from - offset), 0, to - from);
      }
    }
    return 0;
  }

  // Worker: writes `data` (nullptr: zeroes) to [offset, offset + count).
  // A partial block that was absent is completed from `baseFirst` /
  // `baseLast`, the plugin's data of the first and last blocks.
  int write(const uint8_t* data, uint64_t offset, uint32_t count, const uint8_t* baseFirst, const uint8_t* baseLast) {
    Blocks bl = blocksOf(offset, count, bs_, size_);
    std::vector<uint8_t> block;
    for (uint64_t b = bl.first; b <= bl.last; ++b) {
      uint64_t start = b * bs_, end = blockEnd(b);
      uint64_t from = std::max(offset, start), to = std::min(offset + count, end);
      std::lock_guard<std::mutex> lock(stripe(b));
      if (from == start && to == end) {
        if (!data) {  // a whole block of zeroes is a state, and a hole in the file
          fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(start),
                    static_cast<off_t>(end - start));
          setState(b, kZero);
          continue;
        }
        if (int err = pwriteFull(fd_, data + (from - offset), to - from, from)) return err;
        setState(b, kData);
        continue;
      }
      block.resize(end - start);
      uint8_t st = state(b);
      if (st == kData) {
        if (int err = preadFull(fd_, block.data(), block.size(), start)) return err;
      } else if (st == kZero) {
        memset(block.data(), 0, block.size());
      } else {
        const uint8_t* base = b == bl.first ? baseFirst : baseLast;
        if (!base) return EIO;  // the loop fetches it whenever the block was absent
        memcpy(block.data(), base, block.size());
      }
      if (data)
        memcpy(block.data() + (from - start), data + (from - offset), to - from);
      else
        memset(block.data() + (from - start), 0, to - from);
      if (int err = pwriteFull(fd_, block.data(), block.size(), start)) return err;
      setState(b, kData);
    }
    return 0;
  }

 private:
  static constexpr size_t kStripes = 64;
  uint64_t blockEnd(uint64_t b) const { return std::min((b + 1) * bs_, size_); }
  std::mutex& stripe(uint64_t b) { return stripes_[b % kStripes]; }
  void setState(uint64_t b, uint8_t st) {
    std::lock_guard<std::mutex> lock(stateMu_);
    state_[b] = st;
  }

  const int fd_;
  const uint32_t bs_;
  std::mutex stateMu_;
  bool sized_ = false;
  uint64_t size_ = 0;
  std::vector<uint8_t> state_;
  std::array<std::mutex, kStripes> stripes_;  // a block's read-modify-write
};

bool writes(ipc::Op op) { return op == ipc::Op::kWrite || op == ipc::Op::kZero || op == ipc::Op::kTrim; }

// One handle: reads go below (in the client's own buffer) only when a block
// is absent, then the overlay is laid over them; writes go to the overlay.
// A write with a partial block that is absent needs that block from the
// plugin first: the stage's two buffers of its own (held while it lives,
// so it never waits on buffers only its connection can free) take them,
// one such write at a time.
class Stage final : public chain::ChangedInfoStage, private chain::Completer, public chain::Waker {
 public:
  Stage(chain::Next& next, Overlay& overlay, chain::WorkerPool& pool, chain::Slot base0, chain::Slot base1)
      : ChangedInfoStage(next), overlay_(overlay), pool_(pool), base_{base0, base1} {
    info_.canWrite = info_.canFlush = info_.canTrim = info_.canZero = true;
    info_.canFastZero = false;
    info_.canFua = 2;            // nothing to make durable: the overlay is thrown away
    info_.canExtents = false;    // the overlay's blocks would have to be merged in
    info_.canMultiConn = true;   // one overlay for every connection
  }
  ~Stage() override {
    for (auto& s : base_) next().release(s);
  }

  int wakeFd() const override { return box_.fd(); }
  void onWake() override { box_.runReady(); }

  void submit(const chain::Io& io) override {
    if (writes(io.op)) {
      writes_.push_back(io);
      return startWrites();
    }
    switch (io.op) {
      case ipc::Op::kRead: {
        Blocks bl = blocksOf(io.offset, io.count, overlay_.blockSize(), overlay_.size());
        if (!overlay_.anyAbsent(bl.first, bl.last)) return patch(io);
        up_[io.slot.tag] = io;
        chain::Io down = io;
        down.done = this;
        return next().submit(down);
      }
      case ipc::Op::kFlush: return io.done->complete(io, 0, 0);
      default: return next().submit(io);  // cache: the plugin's
    }
  }

 private:
  void complete(const chain::Io& io, int error, uint32_t) override {
    for (int k = 0; k < 2; ++k)
      if (io.slot.tag == base_[k].tag) return baseRead(error);
    chain::Io up = up_[io.slot.tag];
    if (error != 0) return up.done->complete(up, error, 0);
    patch(up);
  }

  void patch(const chain::Io& up) {
    pool_.run([this, up] { return overlay_.patch(up.slot.buf, up.offset, up.count); }, box_,
              [up](int error) { up.done->complete(up, error, 0); });
  }

  // Starts the writes that can go now, in order.
  void startWrites() {
    while (!writes_.empty()) {
      const chain::Io io = writes_.front();
      Blocks bl = blocksOf(io.offset, io.count, overlay_.blockSize(), overlay_.size());
      bool needFirst = bl.partialFirst && overlay_.state(bl.first) == kAbsent;
      bool needLast = bl.partialLast && overlay_.state(bl.last) == kAbsent;
      if (!needFirst && !needLast) {
        writes_.pop_front();
        write(io, false, false);
        continue;
      }
      if (basesBusy_) return;  // after the one before
      writes_.pop_front();
      basesBusy_ = true;
      current_ = io;
      needFirst_ = needFirst, needLast_ = needLast;
      baseError_ = 0;
      pendingBases_ = needFirst + needLast;
      if (needFirst) readBase(0, bl.first);
      if (needLast) readBase(1, bl.last);
      return;
    }
  }

  void readBase(int k, uint64_t block) {
    uint64_t start = block * overlay_.blockSize();
    auto len = static_cast<uint32_t>(std::min<uint64_t>(overlay_.blockSize(), overlay_.size() - start));
    next().submit(chain::Io{ipc::Op::kRead, 0, start, len, base_[k], this});
  }

  void baseRead(int error) {
    if (error != 0) baseError_ = error;
    if (--pendingBases_ > 0) return;
    if (baseError_ != 0) {
      basesBusy_ = false;
      current_.done->complete(current_, baseError_, 0);
      return startWrites();
    }
    write(current_, needFirst_, needLast_);
  }

  void write(const chain::Io& io, bool withFirst, bool withLast) {
    const uint8_t* data = io.op == ipc::Op::kWrite ? io.slot.buf : nullptr;
    const uint8_t* b0 = withFirst ? base_[0].buf : nullptr;
    const uint8_t* b1 = withLast ? base_[1].buf : nullptr;
    bool usesBases = withFirst || withLast;
    pool_.run([this, io, data, b0, b1] { return overlay_.write(data, io.offset, io.count, b0, b1); }, box_,
              [this, io, usesBases](int error) {
                io.done->complete(io, error, 0);
                if (usesBases) {
                  basesBusy_ = false;
                  startWrites();
                }
              });
  }

  Overlay& overlay_;
  chain::WorkerPool& pool_;
  chain::Mailbox box_;
  chain::Slot base_[2];
  std::array<chain::Io, ipc::kRingEntries> up_{};  // reads below, by tag
  std::deque<chain::Io> writes_;                   // writes not yet started
  chain::Io current_{};                            // the write whose bases are being read
  bool basesBusy_ = false, needFirst_ = false, needLast_ = false;
  int pendingBases_ = 0, baseError_ = 0;
};

class Cow final : public chain::Filter {
 public:
  Cow(int fd, uint32_t blockSize) : overlay_(fd, blockSize), pool_(2) {}
  const char* name() const override { return "cow"; }
  bool writesNothingBelow() const override { return true; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    if (next.info().blockMax && overlay_.blockSize() > next.info().blockMax)
      throw std::runtime_error("cow: cow-block-size=" + std::to_string(overlay_.blockSize()) +
                               " is larger than the plugin's largest request, " + std::to_string(next.info().blockMax));
    overlay_.sizeTo(next.info().size);
    auto b0 = next.reserve(overlay_.blockSize());
    auto b1 = b0 ? next.reserve(overlay_.blockSize()) : std::nullopt;
    if (!b1) {
      if (b0) next.release(*b0);
      throw std::runtime_error("cow: no buffer for the plugin's blocks");
    }
    return kj::heap<Stage>(next, overlay_, pool_, *b0, *b1);
  }

 private:
  Overlay overlay_;
  chain::WorkerPool pool_;  // destroyed first: its jobs use the overlay
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  uint64_t blockSize = 65536;
  for (const auto& [key, value] : params) {
    if (key == "cow-block-size") {
      blockSize = parseSize(key, value);
      if (blockSize < 4096 || blockSize > (4u << 20) || (blockSize & (blockSize - 1)))
        throw std::runtime_error("cow-block-size must be a power of two from 4K to 4M, not '" + value + "'");
    } else if (parseBool(key, value)) {  // cow-on-cache, cow-on-read
      throw std::runtime_error(key + "=true is not supported (the overlay holds only what was written)");
    }
  }
  const char* dir = getenv("TMPDIR");
  std::string tmpl = std::string(dir && *dir ? dir : "/var/tmp") + "/nbdcage-cow-XXXXXX";
  int fd = mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cow: cannot make the overlay in " + tmpl + ": " + strerror(errno));
  unlink(tmpl.c_str());
  return std::make_unique<Cow>(fd, static_cast<uint32_t>(blockSize));
}

}  // namespace nbdcage::filters::cow
