#include "frontend/chain/chain.h"

#include <poll.h>
#include <sys/socket.h>

#include <kj/debug.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "frontend/host/remote-handle.h"
#include "frontend/host/supervisor.h"

namespace nbdcage::chain {

Client Client::of(int fd) {
  Client c;
  c.fd = fd;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && len <= sizeof ss) {
    auto* p = reinterpret_cast<const uint8_t*>(&ss);
    c.address.assign(p, p + len);
    ucred cred{};
    socklen_t clen = sizeof cred;
    if (ss.ss_family == AF_UNIX && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
      c.credentials = Credentials{cred.pid, cred.uid, cred.gid};
  }
  return c;
}

namespace {
// Runs `fn`; a filter's refusal (any std::exception) reaches the handshake
// as a HostError, the one kind it answers the client with.
template <typename Fn>
auto refusalsAsHostError(Fn&& fn) {
  try {
    return fn();
  } catch (const frontend::HostError&) {
    throw;
  } catch (const std::exception& e) {
    fprintf(stderr, "nbdcage: a filter refused the client: %s\n", e.what());
    throw frontend::HostError(e.what());
  }
}

// Waits `d`, or less if the client at `fd` hangs up first (false then).
bool sleepUnlessHungUp(std::chrono::nanoseconds d, int fd) {
  auto until = std::chrono::steady_clock::now() + d;
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0) return true;
    pollfd p{fd, POLLRDHUP, 0};
    int r = poll(&p, fd >= 0 ? 1 : 0, static_cast<int>(std::min<int64_t>(left, 1000000)));
    if (r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) return false;
  }
}

std::string callerName(const std::vector<std::unique_ptr<Filter>>& filters, size_t stagesAbove) {
  return stagesAbove == 0 ? "the client" : std::string("filter ") + filters[stagesAbove - 1]->name();
}
}  // namespace

// The bottom as the loop sees it when stages keep timers or the chain can
// be reopened: the current bottom's wait, shortened to the earliest timer;
// due timers run whenever the loop turns (a reopen among them).
class Handle::LoopBottom final : public Bottom {
 public:
  explicit LoopBottom(Handle& h) : h_(h) {}
  const ExportInfo& info() const override { return cur().info(); }
  std::optional<Slot> reserve(uint32_t bufLen) override { return cur().reserve(bufLen); }
  void release(const Slot& slot) override { cur().release(slot); }
  void submit(const Io& io) override { cur().submit(io); }
  void drainCompletions(size_t max) override {
    runDue();
    for (size_t i = 0; i < h_.wakers_.size(); ++i) h_.wakers_[i]->onWake();
    cur().drainCompletions(max);
  }
  uint32_t inFlight() const override { return cur().inFlight(); }
  bool prepareWait(bool completions, Wait& w) override {
    if (!cur().prepareWait(completions, w)) return false;
    wakersAt_ = w.count;
    for (Waker* k : h_.wakers_)
      if (w.count < Wait::kMaxFds) w.fds[w.count++] = {k->wakeFd(), POLLIN, 0};
    auto now = Timed::Clock::now();
    for (Timed* t : h_.timed_) {
      auto at = t->nextTimer();
      if (!at) continue;
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(*at - now).count();
      int wait = ms < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1000000));
      if (w.timeoutMs < 0 || wait < w.timeoutMs) w.timeoutMs = wait;
    }
    return true;
  }
  void wake(const Wait& w) override {
    cur().wake(w);
    // By index: what a waker delivers may reopen the chain.
    for (int i = wakersAt_; i < w.count && static_cast<size_t>(i - wakersAt_) < h_.wakers_.size(); ++i)
      if (w.fds[i].revents) h_.wakers_[static_cast<size_t>(i - wakersAt_)]->onWake();
    runDue();
  }
  // A chain that can be reopened is never given up on: the reopening
  // stage answers for it.
  bool broken() const override {
    for (Ender* e : h_.enders_)
      if (e->ended()) return true;
    return !h_.lower_ && cur().broken();
  }
  void retire() override { cur().retire(); }

 private:
  Bottom& cur() const { return *h_.low_.bottom; }
  void runDue() {
    auto now = Timed::Clock::now();
    // By index: a timer may reopen the chain, which renews the list.
    for (size_t i = 0; i < h_.timed_.size(); ++i)
      if (auto at = h_.timed_[i]->nextTimer(); at && *at <= now) h_.timed_[i]->onTimer(now);
  }
  Handle& h_;
  int wakersAt_ = 0;  // where prepareWait put the wakers' descriptors
};

// What the reopening filter's stage stands on: the top of the low part,
// whichever opening that is, and the count of slots reserved through it.
class Handle::Lower final : public Reopener {
 public:
  explicit Lower(Handle& h) : h_(h) {}
  const ExportInfo& info() const override { return below().info(); }
  std::optional<Slot> reserve(uint32_t bufLen) override {
    auto slot = below().reserve(bufLen);
    if (slot) ++held_;
    return slot;
  }
  void release(const Slot& slot) override {
    below().release(slot);
    --held_;
  }
  void submit(const Io& io) override { below().submit(io); }
  uint64_t generation() const override { return generation_; }
  bool broken() const override { return h_.low_.bottom->broken(); }
  uint32_t inFlight() const override { return h_.low_.bottom->inFlight(); }
  void reopen(bool readonly) override { h_.reopen(readonly); }
  void releaseOld(uint64_t generation, const Slot& slot) override { h_.releaseRetired(generation, slot); }

 private:
  friend class Handle;
  Next& below() const { return *h_.low_.boundaries.back(); }
  Handle& h_;
  uint32_t held_ = 0;
  uint64_t generation_ = 0;
};

// Reads through `at`, turning `bottom` (what completes requests) until the
// answer is there: the host's deadline bounds the wait.
class Handle::Reader final : public OpenReader {
 public:
  Reader(Next& at, Bottom& bottom) : at_(&at), bottom_(&bottom) {}
  int read(uint64_t offset, uint32_t count, uint8_t* out) override {
    if (count > (1u << 20)) return EINVAL;
    auto slot = at_->reserve(count);
    if (!slot) return ENOMEM;
    struct Done final : Completer {
      bool done = false;
      int error = 0;
      void complete(const Io&, int e, uint32_t) override { done = true, error = e; }
    } d;
    at_->submit(Io{ipc::Op::kRead, 0, offset, count, *slot, &d});
    while (!d.done) {
      bottom_->drainCompletions(ipc::kRingEntries);
      if (d.done) break;
      Bottom::Wait w;
      if (!bottom_->prepareWait(true, w)) continue;
      if (poll(w.fds, static_cast<nfds_t>(w.count), w.timeoutMs) < 0 && errno != EINTR)
        for (int i = 0; i < w.count; ++i) w.fds[i].revents = 0;
      bottom_->wake(w);
    }
    if (d.error == 0) memcpy(out, slot->buf, count);
    at_->release(*slot);
    return d.error;
  }

 private:
  Next* at_;
  Bottom* bottom_;
};

Handle::Handle(kj::Own<Bottom> bottom, OpenBottom reopen, const std::vector<std::unique_ptr<Filter>>& filters,
               const std::string& exportName, bool readonly)
    : reopen_(std::move(reopen)), filters_(filters), name_(exportName) {
  for (size_t i = 0; i < filters.size(); ++i)
    if (filters[i]->reopens()) lowFirst_ = i + 1;
  low_.bottom = kj::mv(bottom);
  build(low_, *low_.bottom, lowFirst_, filters.size(), readonly);
  if (lowFirst_ > 0) {
    lower_ = kj::heap<Lower>(*this);
    size_t r = lowFirst_ - 1;
    upper_.stages.push_back(filters[r]->openOver(*lower_, exportName, readonly));
    build(upper_, *upper_.stages.back(), 0, r, readonly);
  }
  collectTimed();
  if (!timed_.empty() || !wakers_.empty() || !enders_.empty() || lower_) loop_ = kj::heap<LoopBottom>(*this);
}

// Bottom up: filter last-1 first.  In the upper part the reopening
// filter's stage is already there, with no Boundary of its own above it
// until this adds one.
void Handle::build(Part& part, Next& below, size_t first, size_t last, bool readonly) {
  Next* under = &below;
  for (size_t i = last; i > first; --i) {
    part.boundaries.push_back(kj::heap<Boundary>(*under, callerName(filters_, i)));
    Reader reader(*part.boundaries.back(), part.bottom ? *part.bottom : *low_.bottom);
    bool ro = readonly;  // read-only below a filter that writes nothing below it
    for (size_t j = 0; j + 1 < i; ++j) ro = ro || filters_[j]->writesNothingBelow();
    part.stages.push_back(filters_[i - 1]->openReading(*part.boundaries.back(), name_, ro, reader));
    under = part.stages.back().get();
  }
  part.boundaries.push_back(kj::heap<Boundary>(*under, callerName(filters_, first)));
}

void Handle::close(Part& part) {
  while (!part.boundaries.empty() || !part.stages.empty()) {
    if (!part.boundaries.empty()) part.boundaries.pop_back();
    if (!part.stages.empty()) part.stages.pop_back();
  }
}

void Handle::collectTimed() {
  timed_.clear();
  wakers_.clear();
  enders_.clear();
  for (Part* part : {&low_, &upper_})
    for (auto& stage : part->stages) {
      if (auto* t = dynamic_cast<Timed*>(stage.get())) timed_.push_back(t);
      if (auto* k = dynamic_cast<Waker*>(stage.get())) wakers_.push_back(k);
      if (auto* e = dynamic_cast<Ender*>(stage.get())) enders_.push_back(e);
    }
  KJ_REQUIRE(wakers_.size() <= Bottom::Wait::kMaxFds - 2, "too many filters that wait on work of their own");
}

void Handle::reopen(bool readonly) {
  KJ_REQUIRE(low_.bottom->inFlight() == 0, "reopening with requests in flight");
  low_.bottom->retire();  // the plugin's handle closes before the new one opens
  Part fresh;
  fresh.bottom = reopen_(readonly);  // throws: the old part stays, broken
  build(fresh, *fresh.bottom, lowFirst_, filters_.size(), readonly);
  Part old = std::move(low_);
  low_ = std::move(fresh);
  close(old);
  if (lower_->held_ > 0) retired_.push_back({lower_->generation_, kj::mv(old.bottom), lower_->held_});
  lower_->held_ = 0;
  ++lower_->generation_;
  collectTimed();
}

void Handle::releaseRetired(uint64_t generation, const Slot& slot) {
  for (auto it = retired_.begin(); it != retired_.end(); ++it) {
    if (it->generation != generation) continue;
    it->bottom->release(slot);
    if (--it->held == 0) retired_.erase(it);
    return;
  }
  KJ_FAIL_ASSERT("releasing a slot of no retired opening", generation);
}

Handle::~Handle() {
  loop_ = nullptr;
  close(upper_);
  lower_ = nullptr;
  close(low_);
  low_.bottom = nullptr;
  retired_.clear();
}

Chain::Chain(std::vector<std::unique_ptr<Filter>> filters, frontend::Supervisor& supervisor)
    : filters_(std::move(filters)), supervisor_(supervisor) {}

// The empty name is the plugin's default export, by its own name: the
// filters, the plugin's open (nbdkit_export_name) and NBD_INFO_NAME all see
// that one, as with nbdkit.
kj::Own<Handle> Chain::open(const std::string& exportName, bool readonly, const Client& client) {
  std::string name = exportName.empty() ? supervisor_.defaultExport(readonly) : exportName;
  bool readOnlyBelow = false;
  for (auto& f : filters_) readOnlyBelow = readOnlyBelow || f->writesNothingBelow();
  auto openBottom = [this, name, who = client, readOnlyBelow](bool ro) -> kj::Own<Bottom> {
    return supervisor_.open(name, ro || readOnlyBelow, who);
  };
  kj::Own<Bottom> bottom;
  for (unsigned attempt = 1;; ++attempt) {
    try {
      bottom = openBottom(readonly);
      break;
    } catch (const frontend::HostError& e) {
      std::optional<std::chrono::nanoseconds> wait;
      for (auto& f : filters_)
        if (!wait) wait = f->retryOpen(attempt + 1);
      if (!wait) throw;
      fprintf(stderr, "nbdcage: opening export \"%s\" failed (%s); trying again in %.3g s\n", name.c_str(), e.what(),
              std::chrono::duration<double>(*wait).count());
      if (!sleepUnlessHungUp(*wait, client.fd)) throw;
    }
  }
  return refusalsAsHostError(
      [&] { return kj::heap<Handle>(kj::mv(bottom), std::move(openBottom), filters_, name, readonly); });
}

ExportList Chain::listFrom(size_t index, bool readonly) {
  if (index == filters_.size()) return supervisor_.listExports(readonly);
  return filters_[index]->listExports(readonly, [this, index](bool ro) { return listFrom(index + 1, ro); });
}

ExportList Chain::listExports(bool readonly) {
  return refusalsAsHostError([&] { return listFrom(0, readonly); });
}

bool Chain::preconnect(const Client& client) {
  for (size_t i = 0; i < filters_.size(); ++i)
    if (!filters_[i]->preconnect(client)) {
      while (i-- > 0) filters_[i]->disconnect();  // those that let it in
      return false;
    }
  return true;
}

void Chain::disconnect() {
  for (auto& f : filters_) f->disconnect();
}

bool Chain::exitBeforeServing() {
  for (auto& f : filters_)
    if (f->exitBeforeServing()) return true;
  return false;
}

void Chain::start(ServerControl& control) {
  for (auto& f : filters_) f->start(control);
}

}  // namespace nbdcage::chain
