#include "filters/retry/retry.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <optional>
#include <stdexcept>
#include <vector>

#include "filters/params.h"

namespace nbdcage::filters::retry {

std::chrono::nanoseconds delayBefore(const Settings& s, unsigned attempt) {
  auto d = s.delay;
  if (s.exponential)
    for (unsigned i = 1; i < attempt && d < std::chrono::hours(24); ++i) d *= 2;
  return d;
}

std::string changed(const chain::ExportInfo& before, const chain::ExportInfo& after, bool readonly) {
  if (after.size != before.size) return "its size";
  bool writes = before.canWrite && !readonly;
  auto lost = [](bool had, bool has) { return had && !has; };
  if (lost(writes, after.canWrite)) return "it is read-only";
  if (writes && (lost(before.canTrim, after.canTrim) || lost(before.canZero, after.canZero) ||
                 lost(before.canFastZero, after.canFastZero) || lost(before.canFua != 0, after.canFua != 0)))
    return "its write operations";
  if (lost(before.canFlush, after.canFlush)) return "flush";
  if (lost(before.canExtents, after.canExtents)) return "extents";
  if (lost(before.canCache != 0, after.canCache != 0)) return "cache";
  if (after.blockMin != before.blockMin || after.blockPreferred != before.blockPreferred ||
      after.blockMax != before.blockMax)
    return "its block sizes";
  return "";
}

namespace {

using Clock = chain::Timed::Clock;

// Buffers the stage lends while nothing below can (a reopen is awaited):
// room for the two largest requests, whatever the stages above hold.
constexpr uint64_t kOwnBudget = 65ull << 20;

bool writes(ipc::Op op) { return op == ipc::Op::kWrite || op == ipc::Op::kTrim || op == ipc::Op::kZero; }

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// The stage lends the stage above slots under tags of its own, so that a
// slot lent before a reopen (in the old opening's memory, kept until it is
// given back) and one lent after never collide.  A request whose slot is
// not of the current opening goes down in a temporary one, its data copied.
class Stage final : public chain::Next, private chain::Completer, public chain::Timed {
 public:
  Stage(chain::Reopener& below, const Settings& s) : below_(below), s_(s), info_(below.info()) {
    for (uint32_t t = ipc::kRingEntries; t > 0; --t) free_.push_back(t - 1);
  }

  const chain::ExportInfo& info() const override { return info_; }

  std::optional<chain::Slot> reserve(uint32_t bufLen) override {
    if (free_.empty()) return std::nullopt;
    Lent l;
    l.len = bufLen;
    if (!recovering_ && usable()) {
      auto slot = below_.reserve(bufLen);
      if (!slot) return std::nullopt;  // below is busy: completions will come
      l.lower = *slot;
      l.generation = below_.generation();
    } else {
      if (!recovering_) startRecovery("the plugin's handle is gone");
      if (ownBytes_ + bufLen > kOwnBudget) return std::nullopt;  // what is held goes after the reopen
      l.own.reset(new uint8_t[bufLen ? bufLen : 1]);
      ownBytes_ += bufLen;
    }
    uint32_t tag = free_.back();
    free_.pop_back();
    lent_[tag] = std::move(l);
    return chain::Slot{tag, 0, bufLen, lent_[tag].buf()};
  }

  void release(const chain::Slot& slot) override {
    Lent& l = lent_[slot.tag];
    if (l.own) {
      ownBytes_ -= l.len;
      l.own.reset();
    } else if (l.generation == below_.generation()) {
      below_.release(l.lower);
    } else {
      below_.releaseOld(l.generation, l.lower);
    }
    free_.push_back(slot.tag);
    if (!queue_.empty()) pump();  // a held request may fit now
  }

  void submit(const chain::Io& io) override {
    Req& r = req_[io.slot.tag];
    r = Req{};
    r.io = io;
    queue_.push_back(io.slot.tag);
    pump();
  }

  std::optional<Clock::time_point> nextTimer() const override {
    if (!recovering_ || inFlight_ > 0 || below_.inFlight() > 0) return std::nullopt;  // completions wake us
    return reopenAt_;
  }

  void onTimer(Clock::time_point now) override {
    if (!recovering_ || now < reopenAt_ || inFlight_ > 0 || below_.inFlight() > 0) return;
    for (uint32_t tag : queue_) ++req_[tag].reopens;
    ++reopens_;
    bool readonly = s_.readonly || readonly_;
    std::string why;
    try {
      below_.reopen(readonly);
      std::string what = changed(info_, below_.info(), readonly);
      changed_ = !what.empty();
      if (changed_) why = "the export changed on reopening (" + what + ")";
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (s_.readonly) readonly_ = true;  // after any failure, as asked
    if (why.empty()) {
      fprintf(stderr, "nbdcage: retry: reopened after %u attempt%s; sending %zu request%s again\n", reopens_,
              reopens_ == 1 ? "" : "s", queue_.size(), queue_.size() == 1 ? "" : "s");
      recovering_ = false;
      reopens_ = 0;
      pump();
      return;
    }
    // Those that have waited through their retries fail; the rest wait on.
    std::deque<uint32_t> out, kept;
    for (uint32_t tag : queue_) (req_[tag].reopens >= s_.retries ? out : kept).push_back(tag);
    queue_ = std::move(kept);
    if (queue_.empty()) {
      fprintf(stderr, "nbdcage: retry: reopening failed: %s; giving up on %zu request%s\n", why.c_str(), out.size(),
              out.size() == 1 ? "" : "s");
      recovering_ = false;  // the next request starts again
      reopens_ = 0;
    } else {
      auto wait = delayBefore(s_, 1 + mostReopens());
      fprintf(stderr, "nbdcage: retry: reopening failed: %s; trying again in %.3g s\n", why.c_str(), seconds(wait));
      reopenAt_ = now + std::chrono::duration_cast<Clock::duration>(wait);
    }
    for (uint32_t tag : out) finish(tag, req_[tag].error ? req_[tag].error : EIO, 0);
  }

 private:
  struct Lent {
    uint32_t len = 0;
    chain::Slot lower{};         // when lent from below
    uint64_t generation = 0;     // ... in this opening
    std::unique_ptr<uint8_t[]> own;  // when lent from the stage's own memory
    uint8_t* buf() const { return len == 0 ? nullptr : own ? own.get() : lower.buf; }
  };
  struct Req {
    chain::Io io{};                   // as the stage above sent it
    std::optional<chain::Slot> temp;  // the current opening's slot it went down in, if not its own
    int error = 0;                    // its last failure
    unsigned reopens = 0;             // reopen attempts it waited through
  };
  enum class Sent { kYes, kNoSlot, kBroken };

  bool usable() const { return !changed_ && !below_.broken(); }

  unsigned mostReopens() const {
    unsigned most = 0;
    for (uint32_t tag : queue_) most = std::max(most, req_[tag].reopens);
    return most;
  }

  void startRecovery(const std::string& why) {
    recovering_ = true;
    auto wait = delayBefore(s_, 1 + mostReopens());
    reopenAt_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(wait);
    fprintf(stderr, "nbdcage: retry: %s; reopening in %.3g s\n", why.c_str(), seconds(wait));
  }

  // Sends the held requests, in order, while nothing stops them.
  void pump() {
    if (pumping_) return;  // a completion inside a submit
    pumping_ = true;
    while (!queue_.empty() && !recovering_) {
      uint32_t tag = queue_.front();
      Sent sent = send(tag);
      if (sent == Sent::kBroken) {
        startRecovery("the plugin's handle is gone");
        break;
      }
      if (sent == Sent::kNoSlot) {
        if (inFlight_ > 0 || below_.inFlight() > 0) break;  // a completion frees one
        queue_.pop_front();
        finish(tag, ENOMEM, 0);  // nothing will: do not wait for ever
        continue;
      }
      queue_.pop_front();
    }
    pumping_ = false;
  }

  Sent send(uint32_t tag) {
    Req& r = req_[tag];
    Lent& l = lent_[tag];
    if (readonly_ && writes(r.io.op)) {
      finish(tag, EROFS, 0);  // retry-readonly: the plugin was reopened read-only
      return Sent::kYes;
    }
    if (!usable()) return Sent::kBroken;
    chain::Slot down = l.lower;
    if (l.own || l.generation != below_.generation()) {
      auto t = below_.reserve(l.len);
      if (!t) return Sent::kNoSlot;
      if (r.io.op == ipc::Op::kWrite) memcpy(t->buf, l.buf(), r.io.count);
      r.temp = *t;
      down = *t;
    }
    chain::Io io = r.io;
    io.slot = down;
    io.done = this;
    byLower_[down.tag] = tag;
    ++inFlight_;
    below_.submit(io);
    return Sent::kYes;
  }

  void complete(const chain::Io& io, int error, uint32_t extents) override {
    uint32_t tag = byLower_[io.slot.tag];
    --inFlight_;
    Req& r = req_[tag];
    if (r.temp) {
      if (error == 0 && r.io.op == ipc::Op::kRead) memcpy(lent_[tag].buf(), r.temp->buf, r.io.count);
      if (error == 0 && r.io.op == ipc::Op::kExtents)
        memcpy(lent_[tag].buf(), r.temp->buf, extents * sizeof(ipc::ExtentEntry));
      below_.release(*r.temp);
      r.temp.reset();
    }
    if (error == 0 || error == chain::kDisconnectNow || r.reopens >= s_.retries) {
      if (error != 0 && error != chain::kDisconnectNow)
        fprintf(stderr, "nbdcage: retry: %s failed after %u reopen%s: %s; giving up\n", ipc::opName(r.io.op),
                r.reopens, r.reopens == 1 ? "" : "s", strerror(error));
      finish(tag, error, extents);
    } else {
      r.error = error;
      queue_.push_back(tag);
      if (!recovering_) startRecovery(std::string(ipc::opName(r.io.op)) + " failed: " + strerror(error));
    }
    if (!queue_.empty()) pump();
  }

  void finish(uint32_t tag, int error, uint32_t extents) {
    chain::Io up = req_[tag].io;
    up.done->complete(up, error, extents);
  }

  chain::Reopener& below_;
  const Settings s_;
  const chain::ExportInfo info_;  // as the client was told, whatever a reopen finds
  std::array<Lent, ipc::kRingEntries> lent_;
  std::vector<uint32_t> free_;  // tags the stage above may have
  std::array<Req, ipc::kRingEntries> req_{};
  std::array<uint32_t, ipc::kRingEntries> byLower_{};  // the current opening's tag -> ours
  std::deque<uint32_t> queue_;  // requests waiting to go down, in order
  uint64_t ownBytes_ = 0;
  uint32_t inFlight_ = 0;  // ours below
  bool recovering_ = false, changed_ = false, readonly_ = false, pumping_ = false;
  unsigned reopens_ = 0;  // attempts in this run of failures
  Clock::time_point reopenAt_{};
};

class Retry final : public chain::Filter {
 public:
  explicit Retry(const Settings& s) : s_(s) {}
  const char* name() const override { return "retry"; }
  bool reopens() const override { return true; }
  kj::Own<chain::Next> openOver(chain::Reopener& below, const std::string&, bool) override {
    return kj::heap<Stage>(below, s_);
  }
  std::optional<std::chrono::nanoseconds> retryOpen(unsigned attempt) const override {
    if (attempt - 1 > s_.retries) return std::nullopt;
    return delayBefore(s_, attempt - 1);
  }

 private:
  const Settings s_;
};

}  // namespace

Settings parse(const std::vector<std::pair<std::string, std::string>>& params) {
  Settings s;
  for (const auto& [key, value] : params) {
    if (key == "retries") {
      s.retries = parseCount(key, value, 1000);
    } else if (key == "retry-delay") {
      s.delay = parseDelay(key, value);
    } else if (key == "retry-exponential") {
      s.exponential = parseBool(key, value);
    } else {
      s.readonly = parseBool(key, value);
    }
  }
  return s;
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  return std::make_unique<Retry>(parse(params));
}

}  // namespace nbdcage::filters::retry
