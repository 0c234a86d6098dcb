#include "filters/protect/protect.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace nbdcage::filters::protect {

namespace {

std::optional<uint64_t> number(const std::string& s, const std::string& whole) {
  if (s.empty()) return std::nullopt;
  char* end;
  errno = 0;
  unsigned long long n = s[0] == '-' ? 0 : strtoull(s.c_str(), &end, 0);
  if (s[0] == '-' || errno || *end)
    throw std::runtime_error("protect= must be START-END or ~START-END (decimal, 0NN octal or 0xNN), not '" + whole + "'");
  return n;
}

}  // namespace

Rule parseRule(const std::string& value) {
  Rule r;
  std::string v = value;
  if (!v.empty() && v[0] == '~') r.complement = true, v.erase(0, 1);
  size_t dash = v.find('-');
  if (dash == std::string::npos)
    throw std::runtime_error("protect= must be START-END or ~START-END, not '" + value + "'");
  r.start = number(v.substr(0, dash), value);
  r.end = number(v.substr(dash + 1), value);
  if (r.start && r.end && *r.end < *r.start)
    throw std::runtime_error("protect=" + value + ": the range ends before it starts");
  return r;
}

std::vector<Range> protectedRanges(const std::vector<Rule>& rules, uint64_t size) {
  std::vector<Range> v;
  auto add = [&](uint64_t s, uint64_t e) {
    if (s < e) v.push_back({s, e});
  };
  for (const Rule& r : rules) {
    uint64_t s = std::min(r.start.value_or(0), size);
    uint64_t e = r.end ? std::min(*r.end + 1, size) : size;  // inclusive end; clipped to the disk
    if (r.end && *r.end == UINT64_MAX) e = size;
    if (!r.complement) {
      add(s, e);
    } else {
      add(0, s);
      add(e, size);
    }
  }
  std::sort(v.begin(), v.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
  std::vector<Range> merged;
  for (const Range& r : v) {
    if (!merged.empty() && r.start <= merged.back().end)
      merged.back().end = std::max(merged.back().end, r.end);
    else
      merged.push_back(r);
  }
  return merged;
}

namespace {

bool writes(ipc::Op op) { return op == ipc::Op::kWrite || op == ipc::Op::kZero || op == ipc::Op::kTrim; }

// A write that touches a protected range waits while the stage reads the
// protected bytes it covers (in pieces, into a buffer the stage holds for
// its life) and compares; then it goes down or fails.  One such write at a
// time; the others go by.
class Stage final : public chain::FilterStage, private chain::Completer {
 public:
  Stage(chain::Next& next, std::vector<Range> ranges, chain::Slot buf)
      : FilterStage(next), ranges_(std::move(ranges)), buf_(buf) {}
  ~Stage() override { next().release(buf_); }

  void submit(const chain::Io& io) override {
    if (!writes(io.op) || !touches(io)) return next().submit(io);
    if (io.op == ipc::Op::kTrim) return io.done->complete(io, EPERM, 0);  // a trim may change anything
    queue_.push_back(io);
    if (queue_.size() == 1) startCheck();
  }

 private:
  bool touches(const chain::Io& io) const {
    for (const Range& r : ranges_)
      if (io.offset < r.end && r.start < io.offset + io.count) return true;
    return false;
  }

  // The protected pieces of the front request, read one by one.
  void startCheck() {
    const chain::Io& io = queue_.front();
    pieces_.clear();
    for (const Range& r : ranges_) {
      uint64_t s = std::max(r.start, io.offset), e = std::min(r.end, io.offset + io.count);
      for (; s < e; s += std::min<uint64_t>(e - s, buf_.bufLen)) pieces_.push_back({s, std::min<uint64_t>(s + buf_.bufLen, e)});
    }
    piece_ = 0;
    readPiece();
  }
  void readPiece() {
    const Range& p = pieces_[piece_];
    next().submit(chain::Io{ipc::Op::kRead, 0, p.start, static_cast<uint32_t>(p.end - p.start), buf_, this});
  }
  void complete(const chain::Io&, int error, uint32_t) override {
    const chain::Io io = queue_.front();
    const Range& p = pieces_[piece_];
    bool same = error == 0;
    if (same) {
      size_t n = p.end - p.start;
      if (io.op == ipc::Op::kWrite) {
        same = memcmp(buf_.buf, io.slot.buf + (p.start - io.offset), n) == 0;
      } else {
        for (size_t i = 0; i < n && same; ++i) same = buf_.buf[i] == 0;
      }
    }
    if (same && ++piece_ < pieces_.size()) return readPiece();
    queue_.erase(queue_.begin());
    if (same)
      next().submit(io);
    else
      io.done->complete(io, error != 0 ? error : EPERM, 0);
    if (!queue_.empty()) startCheck();
  }

  const std::vector<Range> ranges_;
  chain::Slot buf_;
  std::vector<chain::Io> queue_;  // writes to check; the front one is being checked
  std::vector<Range> pieces_;
  size_t piece_ = 0;
};

class Protect final : public chain::Filter {
 public:
  explicit Protect(std::vector<Rule> rules) : rules_(std::move(rules)) {}
  const char* name() const override { return "protect"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    auto ranges = protectedRanges(rules_, next.info().size);
    if (ranges.empty()) return kj::heap<chain::FilterStage>(next);
    auto buf = next.reserve(128 * 1024);
    if (!buf) throw std::runtime_error("protect: no buffer to compare protected data in");
    return kj::heap<Stage>(next, std::move(ranges), *buf);
  }

 private:
  const std::vector<Rule> rules_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  std::vector<Rule> rules;
  for (const auto& [key, value] : params) rules.push_back(parseRule(value));
  return std::make_unique<Protect>(std::move(rules));
}

}  // namespace nbdcage::filters::protect
