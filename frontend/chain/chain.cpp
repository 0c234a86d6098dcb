#include "frontend/chain/chain.h"

#include <sys/socket.h>

#include <cstdio>

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

std::string callerName(const std::vector<std::unique_ptr<Filter>>& filters, size_t stagesAbove) {
  return stagesAbove == 0 ? "the client" : std::string("filter ") + filters[stagesAbove - 1]->name();
}
}  // namespace

// The bottom as the loop sees it when stages keep timers: its own wait,
// shortened to the earliest timer; due timers run whenever the loop turns.
class Handle::ClockedBottom final : public Bottom {
 public:
  ClockedBottom(Bottom& inner, const std::vector<Timed*>& timed) : inner_(inner), timed_(timed) {}
  const ExportInfo& info() const override { return inner_.info(); }
  std::optional<Slot> reserve(uint32_t bufLen) override { return inner_.reserve(bufLen); }
  void release(const Slot& slot) override { inner_.release(slot); }
  void submit(const Io& io) override { inner_.submit(io); }
  void drainCompletions(size_t max) override {
    runDue();
    inner_.drainCompletions(max);
  }
  uint32_t inFlight() const override { return inner_.inFlight(); }
  bool prepareWait(bool completions, Wait& w) override {
    if (!inner_.prepareWait(completions, w)) return false;
    auto now = Timed::Clock::now();
    for (Timed* t : timed_) {
      auto at = t->nextTimer();
      if (!at) continue;
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(*at - now).count();
      int wait = ms < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1000000));
      if (w.timeoutMs < 0 || wait < w.timeoutMs) w.timeoutMs = wait;
    }
    return true;
  }
  void wake(const Wait& w) override {
    inner_.wake(w);
    runDue();
  }
  bool broken() const override { return inner_.broken(); }

 private:
  void runDue() {
    auto now = Timed::Clock::now();
    for (Timed* t : timed_)
      if (auto at = t->nextTimer(); at && *at <= now) t->onTimer(now);
  }
  Bottom& inner_;
  const std::vector<Timed*>& timed_;
};

Handle::Handle(kj::Own<Bottom> bottom, const std::vector<std::unique_ptr<Filter>>& filters,
               const std::string& exportName, bool readonly)
    : name_(exportName), bottom_(kj::mv(bottom)) {
  Next* below = bottom_.get();
  for (size_t i = filters.size(); i > 0; --i) {
    boundaries_.push_back(kj::heap<Boundary>(*below, callerName(filters, i)));
    stages_.push_back(filters[i - 1]->open(*boundaries_.back(), exportName, readonly));
    if (auto* t = dynamic_cast<Timed*>(stages_.back().get())) timed_.push_back(t);
    below = stages_.back().get();
  }
  boundaries_.push_back(kj::heap<Boundary>(*below, callerName(filters, 0)));
  if (!timed_.empty()) clocked_ = kj::heap<ClockedBottom>(*bottom_, timed_);
}

Handle::~Handle() {
  // Top down: a filter's stage closes before what it stands on.
  while (!boundaries_.empty()) {
    boundaries_.pop_back();
    if (!stages_.empty()) stages_.pop_back();
  }
}

Chain::Chain(std::vector<std::unique_ptr<Filter>> filters, frontend::Supervisor& supervisor)
    : filters_(std::move(filters)), supervisor_(supervisor) {}

// The empty name is the plugin's default export, by its own name: the
// filters, the plugin's open (nbdkit_export_name) and NBD_INFO_NAME all see
// that one, as with nbdkit.
kj::Own<Handle> Chain::open(const std::string& exportName, bool readonly, const Client& client) {
  std::string name = exportName.empty() ? supervisor_.defaultExport(readonly) : exportName;
  auto remote = supervisor_.open(name, readonly, client);
  return refusalsAsHostError([&] { return kj::heap<Handle>(kj::mv(remote), filters_, name, readonly); });
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
