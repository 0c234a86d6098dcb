#include "frontend/host/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kj/debug.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "frontend/host/host-client.h"
#include "frontend/host/host-process.h"
#include "frontend/host/inbox.h"
#include "frontend/host/validate.h"

namespace nbdcage::frontend {

// One host as the policy sees it.  Members go in reverse order: the
// watches before what they watch, the process (killed and reaped if need
// be) last.
struct Supervisor::Host {
  explicit Host(HostProcess p) : process(kj::mv(p)) {}
  HostProcess process;
  kj::Own<HostClient> rpc;  // null once retired: its socket is closed
  kj::Own<kj::UnixEventPort::FdObserver> observer;
  kj::Promise<void> watch = nullptr;          // its pidfd: reaps it
  kj::Promise<void> deafWatch = nullptr;      // its control socket closing
  kj::Promise<void> shutdownWatch = nullptr;  // the plugin's nbdkit_shutdown()
  kj::Promise<void> exitDeadline = nullptr;   // once retired: killed if it lingers
  kj::Promise<void> liveness = nullptr;       // the ping every kPingEvery
  uint64_t generation = 0;
  bool dead = false;
  bool dedicated = false;  // one client's (--isolate=connection)
  bool retired = false;    // its client left: its end is expected
  bool served = false;     // it opened a handle for a client
};

namespace {

// What a client is told when a call to its host failed.
std::string whyCallFailed(const kj::Exception& e) {
  return e.getType() == kj::Exception::Type::DISCONNECTED ? "the plugin host died" : e.getDescription().cStr();
}

// A call's failure, in the words a client is told.
kj::Exception failed(const std::string& why) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(why));
}

[[noreturn]] void hostGone() { kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "the plugin host died")); }

// A host being stopped has no client any more.
HostClient& rpcOf(kj::Own<HostClient>& rpc) {
  if (!rpc) hostGone();
  return *rpc;
}

// The end of every host command line: the sandbox, -D flags, the plugin,
// its parameters.
void appendPluginArgs(const Config& config, const SandboxPolicy& sandbox, std::vector<std::string>& args) {
  auto policy = sandbox.hostArgs();
  args.insert(args.end(), policy.begin(), policy.end());
  for (const auto& d : config.debugFlags) {
    args.push_back("--debug-flag");
    args.push_back(d);
  }
  args.push_back(config.pluginPath);
  args.insert(args.end(), config.params.begin(), config.params.end());
}

// A host that may use our stdin while it configures its plugin (never with
// -s, where stdin is the client), and gets the descriptors KEY=-FD, fd= and
// dirfd= named: the first host, and the probes.
void giveStdio(const Config& config, std::vector<std::string>& args, HostProcess::Spec& spec) {
  if (config.single) return;
  spec.stdinFd = STDIN_FILENO;
  args.push_back("--stdio-safe");
  if (config.passedFds.empty()) return;
  args.push_back("--passed-fds");
  args.push_back(std::to_string(config.passedFds.size()));
  for (size_t i = 0; i < config.passedFds.size(); ++i)
    spec.passFds.emplace_back(config.passedFds[i], Config::kPassedFdBase + static_cast<int>(i));
}

}  // namespace

Supervisor::Supervisor(const Config& config, const SandboxPolicy& sandbox, kj::AsyncIoContext& io)
    : config_(config),
      sandbox_(sandbox),
      io_(io),
      inbox_(io.unixEventPort),
      startDir_(std::filesystem::current_path().string()) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  stopFulfiller_ = kj::mv(paf.fulfiller);
  stopRequested_ = paf.promise.fork();
  auto crash = kj::newPromiseAndFulfiller<int>();
  crashFulfiller_ = kj::mv(crash.fulfiller);
  crashExit_ = crash.promise.fork();
}

void Supervisor::killHostNow() {
  // Ours to end: not a crash (no --on-plugin-crash consequences).
  auto end = [](Host& h) {
    h.retired = true;
    if (!h.dead) h.process.killAll();
  };
  if (host_) end(*host_);
  for (auto& [id, h] : dedicated_) end(*h);
}

Supervisor::Host* Supervisor::findHost(uint64_t generation) {
  if (host_ && host_->generation == generation) return host_.get();
  for (auto& [id, h] : dedicated_)
    if (h->generation == generation) return h.get();
  return nullptr;
}

// A client's own host: spawned for its open, retired at its close.  Hosts
// of clients that left and have been reaped are dropped here.
Supervisor::Host& Supervisor::dedicatedHost(uint64_t handleId) {
  for (auto it = dedicated_.begin(); it != dedicated_.end();)
    it = it->second->dead && it->second->retired ? dedicated_.erase(it) : std::next(it);
  auto host = spawnHost();
  host->dedicated = true;
  watchHost(*host);
  watchForShutdown(*host);
  Host& ref = *host;
  dedicated_[handleId] = kj::mv(host);
  return ref;
}

// The host sees EOF and exits (its plugin cleans up); its watch reaps it.
// One that is still there after kExitGrace (a plugin hung in close or
// unload) is killed.
void Supervisor::retire(Host& host) {
  if (host.retired && !host.rpc) return;
  host.retired = true;
  host.liveness = nullptr;
  host.deafWatch = nullptr;
  host.shutdownWatch = nullptr;
  host.rpc = nullptr;
  host.exitDeadline = io_.provider->getTimer().afterDelay(kExitGrace).then([&host]() {
    if (!host.dead) host.process.killAll();
  }).eagerlyEvaluate(nullptr);
}

void Supervisor::watchForShutdown(Host& host) {
  host.shutdownWatch =
      host.rpc->shutdownRequested().then([this]() { stopFulfiller_->fulfill(); }).eagerlyEvaluate(nullptr);
}

// Whatever still runs (stop() was not waited for) is killed: the process
// of each Host kills and reaps it on its way.
Supervisor::~Supervisor() {
  calls_ = nullptr;
  handles_.clear();
  killHostNow();
  host_ = nullptr;
  dedicated_.clear();
}

kj::Own<Supervisor::Host> Supervisor::spawnHost(bool withStdin) {
  int sv[2];
  KJ_SYSCALL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  kj::AutoCloseFd ours(sv[0]), theirs(sv[1]);
  std::vector<std::string> args;
  if (config_.verbose) args.push_back("--verbose");
  if (config_.readonly) args.push_back("--readonly");
  if (config_.swap) args.push_back("--swap");
  HostProcess::Spec spec;
  if (withStdin) giveStdio(config_, args, spec);
  args.push_back("--threads");
  args.push_back(std::to_string(config_.threads));
  appendPluginArgs(config_, sandbox_, args);

  spec.path = config_.hostPath;
  spec.args = std::move(args);
  spec.env = sandbox_.hostEnv();
  // Always the directory nbdcage started in: a daemon has left it, but a
  // restarted host must resolve relative parameters as the first one did.
  spec.startDir = startDir_;
  spec.controlFd = theirs.get();
  spec.relayStderr = true;  // its messages go through our log
  spec.limitRelay = !config_.verbose;
  spec.namespaces = sandbox_.enabled;
  spec.network = sandbox_.network;
  kj::Own<Host> host;
  try {
    host = kj::heap<Host>(HostProcess::spawn(spec));
  } catch (const std::exception& e) {
    throw HostError(std::string("cannot start the plugin host: ") + e.what());
  }
  if (sandbox_.enabled && host->process.namespaces() == 0 && !toldNoNamespaces_) {
    toldNoNamespaces_ = true;
    fprintf(stderr, "nbdcage: sandbox: this kernel refuses new namespaces; the plugin host shares the machine's "
                    "PID, mount and network namespaces (its other layers still hold)\n");
  }
  theirs = nullptr;
  host->rpc = kj::heap<HostClient>(io_, kj::mv(ours));
  host->generation = ++generation_;
  lastSpawn_ = std::chrono::steady_clock::now();
  return host;
}

void Supervisor::watchHost(Host& host) {
  host.observer = kj::heap<kj::UnixEventPort::FdObserver>(io_.unixEventPort, host.process.pidfd(),
                                                          kj::UnixEventPort::FdObserver::OBSERVE_READ);
  host.watch = host.observer->whenBecomesReadable().then([this, &host]() { reap(host, false); }).eagerlyEvaluate(nullptr);
  // A host that shuts its end of the RPC socket and lives on is as good as
  // dead: it is killed, so its connections fail and the next gets a new one.
  host.deafWatch = host.rpc->disconnected()
                       .then([&host]() {
                         // (A host that died closed it too: its watch says so.)
                         if (!host.dead && host.process.running()) {
                           fprintf(stderr, "nbdcage: the plugin host (pid %d) closed its control socket; killing it\n",
                                   host.process.pid());
                           host.process.killAll();
                         }
                       })
                       .eagerlyEvaluate(nullptr);
  watchLiveness(host);
}

// A host is pinged every kPingEvery; one that does not answer within
// kPingWithin (stopped, or its RPC loop broken: no plugin code runs there)
// is killed, so the next client finds a working host rather than waiting
// for a deadline.  Off with --request-timeout=0, as every other limit.
void Supervisor::watchLiveness(Host& host) {
  if (config_.requestTimeout == 0) return;
  uint64_t generation = host.generation;
  host.liveness = io_.provider->getTimer().afterDelay(kPingEvery).then([this, generation]() {
    return ping(generation);
  }).eagerlyEvaluate(nullptr);
}

kj::Promise<void> Supervisor::ping(uint64_t generation) {
  Host* host = findHost(generation);
  if (host == nullptr || host->dead || !host->rpc) return kj::READY_NOW;
  auto& timer = io_.provider->getTimer();
  // A failed ping is a disconnect: the deaf watch deals with it.
  auto answered = host->rpc->ping().then([]() { return true; }, [](kj::Exception&&) { return true; });
  return answered.exclusiveJoin(timer.afterDelay(kPingWithin).then([]() { return false; }))
      .then([this, generation](bool ok) -> kj::Promise<void> {
        Host* h = findHost(generation);
        if (h == nullptr || h->dead || !h->rpc) return kj::READY_NOW;
        if (!ok) {
          fprintf(stderr,
                  "nbdcage: the plugin host (pid %d) did not answer a liveness check within %lld s; killing it\n",
                  h->process.pid(), static_cast<long long>(kPingWithin / kj::SECONDS));
          h->process.killAll();
          return kj::READY_NOW;
        }
        return io_.provider->getTimer().afterDelay(kPingEvery).then([this, generation]() { return ping(generation); });
      });
}

int Supervisor::reap(Host& host, bool expected) {
  if (host.dead) return host.process.wait();
  host.dead = true;
  expected = expected || host.retired;
  int code = host.process.wait();
  // Whatever the plugin started (scripts, helpers) goes with its host.
  host.process.killAll();
  if (!expected) {
    std::string how = WIFSIGNALED(code) ? "was killed by signal " + std::to_string(WTERMSIG(code))
                                        : "exited with status " + std::to_string(WEXITSTATUS(code));
    // A client's own host held that client's data only: the next client
    // gets its own host anyway.
    std::string policy = host.dedicated && config_.onCrash() == "fail" ? "restart" : config_.onCrash();
    const char* next = policy == "restart" ? "a new one serves the next connection"
                       : policy == "fail"  ? "its data went with it, so the export is refused from now on"
                                           : "nbdcage exits";
    fprintf(stderr, "nbdcage: the plugin host (pid %d) %s; %s\n", host.process.pid(), how.c_str(), next);
    if (!host.served && !host.dedicated) ++youngDeaths_;
    reportCrashLoop(host);
    if (policy == "fail" && lost_.empty())
      lost_ = "the plugin host for '" + config_.plugin + "' " + how +
              (config_.configuredFromStdin()
                   ? ", and what it read from standard input cannot be read again"
                   : ", and the data it kept in memory went with it") +
              "; restart nbdcage (see --on-plugin-crash)";
    if (policy == "exit") crashFulfiller_->fulfill(1);
  }
  return code;
}

int Supervisor::start() {
  kj::Own<Host> host;
  try {
    host = spawnHost(/*withStdin=*/true);
  } catch (const HostError& e) {
    fprintf(stderr, "nbdcage: %s\n", e.what());
    return 1;
  }
  kj::Maybe<kj::Exception> failure;
  uint32_t version = 0;
  try {
    // A stopping signal while the plugin configures itself ends nbdcage at
    // once, as the signal's default action would: the host goes first.
    HostClient::Hello hello{};
    kj::Promise<int> signalled = kj::NEVER_DONE;
    for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP})
      signalled = signalled.exclusiveJoin(io_.unixEventPort.onSignal(sig).then([sig](siginfo_t) { return sig; }));
    int sig = host->rpc->hello()
                  .then([&hello](HostClient::Hello h) {
                    hello = kj::mv(h);
                    return 0;
                  })
                  .exclusiveJoin(kj::mv(signalled))
                  .wait(io_.waitScope);
    if (sig != 0) {
      host->process.kill(SIGKILL);
      host->rpc = nullptr;
      reap(*host, true);
      host->process.finishRelay();
      fprintf(stderr, "nbdcage: SIG%s while the plugin was starting; stopped\n", sigabbrev_np(sig));
      interruptedBy_ = sig;
      return 128 + sig;
    }
    version = hello.protocolVersion;
    if (config_.verbose)
      fprintf(stderr, "nbdcage: debug: plugin host %d (%s) serves %s (API v%u, thread model %u)\n",
              host->process.pid(), config_.hostPath.c_str(), hello.plugin.c_str(), hello.apiVersion,
              hello.threadModel);
  } catch (const kj::Exception& e) {
    failure = e;
  }
  if (failure != nullptr || version != ipc::schema::PROTOCOL_VERSION) {
    host->rpc->shutdownWrite();
    host->rpc = nullptr;
    int code = reap(*host, true);
    host->process.finishRelay();  // the host's last words first
    if (version != 0 && version != ipc::schema::PROTOCOL_VERSION) {
      fprintf(stderr, "nbdcage: %s speaks protocol %u, this nbdcage speaks %u: reinstall nbdcage\n",
              config_.hostPath.c_str(), version, ipc::schema::PROTOCOL_VERSION);
    } else if (WIFSIGNALED(code)) {
      fprintf(stderr, "nbdcage: the plugin host crashed while loading '%s' (signal %d)\n", config_.plugin.c_str(),
              WTERMSIG(code));
    } else if (!WIFEXITED(code) || WEXITSTATUS(code) != 1) {
      fprintf(stderr, "nbdcage: the plugin host failed while loading '%s' (status %d)\n", config_.plugin.c_str(),
              WEXITSTATUS(code));
    }
    return 1;
  }
  host_ = kj::mv(host);
  watchHost(*host_);
  watchForShutdown(*host_);
  return 0;
}

// Never throws: a failure (the data is lost, no process) is the promise's.
kj::Promise<Supervisor::Host*> Supervisor::sharedHost() {
  try {
    return sharedHostNow();
  } catch (const HostError& e) {
    return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(e.what()));
  }
}

kj::Promise<Supervisor::Host*> Supervisor::sharedHostNow() {
  // The event loop may not have seen the pidfd yet: ask it directly, so a
  // connection right after a host died gets a new host, not the dead one.
  if (host_ && !host_->dead) {
    struct pollfd p = {host_->process.pidfd(), POLLIN, 0};
    if (poll(&p, 1, 0) > 0) reap(*host_, false);
  }
  if (host_ && !host_->dead) return host_.get();
  // A new host would serve a new, empty disk under the same name.
  if (!lost_.empty()) throw HostError(lost_);
  // Back off: a plugin that dies at once must not make us fork in a loop.
  // On a timer: the loop never sleeps (other connections are served
  // meanwhile), and whoever comes after the wait looks again.
  auto wait = lastSpawn_ + backOff() - std::chrono::steady_clock::now();
  if (wait.count() > 0) {
    if (youngDeaths_ >= 2 && !toldBackOff_) {
      toldBackOff_ = true;  // once per wait
      fprintf(stderr, "nbdcage: %u plugin hosts in a row died before serving anyone; the next starts in %lld ms\n",
              youngDeaths_, static_cast<long long>(backOff().count()));
    }
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    return io_.provider->getTimer().afterDelay(ms * kj::MILLISECONDS).then([this]() { return sharedHost(); });
  }
  if (host_) {  // the dead shared host (reaped above): clients' own hosts stay
    retire(*host_);
    host_ = nullptr;
  }
  toldBackOff_ = false;
  host_ = spawnHost();
  watchHost(*host_);
  watchForShutdown(*host_);
  return checked(*host_);
}

// 200 ms between starts, doubled for each host in a row that died before
// it served a client (a plugin that cannot start or cannot open), up to
// 5 s; a host that served someone sets it back.  Hosts killed from outside
// after serving (the chaos test's) are replaced at the base pace.
std::chrono::milliseconds Supervisor::backOff() const {
  unsigned doublings = std::min(youngDeaths_ > 0 ? youngDeaths_ - 1 : 0u, 5u);
  return std::min(std::chrono::milliseconds(200) * (1u << doublings), std::chrono::milliseconds(5000));
}

// Resolves once the host of `generation` is reaped: it is disconnected,
// so it is killed to be sure, and its pidfd is looked at on a timer (the
// loop never sleeps).  By generation, not reference: another call that
// waited for the same host may have replaced (and freed) it meanwhile.
kj::Promise<void> Supervisor::untilDead(uint64_t generation) {
  Host* host = findHost(generation);
  if (host != nullptr && !host->dead) {
    struct pollfd p = {host->process.pidfd(), POLLIN, 0};
    if (poll(&p, 1, 0) > 0) reap(*host, false);
  }
  if (host == nullptr || host->dead) return kj::READY_NOW;
  host->process.killAll();
  return io_.provider->getTimer().afterDelay(2 * kj::MILLISECONDS).then([this, generation]() {
    return untilDead(generation);
  });
}

// Resolves once the host of `generation` has been reaped (its pidfd watch
// does it), looking on a timer.
kj::Promise<void> Supervisor::untilReaped(uint64_t generation) {
  Host* host = findHost(generation);
  if (host == nullptr || host->dead) return kj::READY_NOW;
  return io_.provider->getTimer().afterDelay(5 * kj::MILLISECONDS).then([this, generation]() {
    return untilReaped(generation);
  });
}

// A new host is checked as the first one was: it must say hello in our
// protocol before it is asked anything else.
//
// Its plugin loads, configures and gets ready before it answers: that has
// the request deadline too (the first host's has none, as nbdkit's).
kj::Promise<Supervisor::Host*> Supervisor::checked(Host& host) {
  uint64_t generation = host.generation;
  auto hello = checkHello(host);
  if (config_.requestTimeout == 0) return hello;
  auto late = io_.provider->getTimer().afterDelay(config_.requestTimeout * kj::SECONDS).then(
      [this, generation]() -> kj::Promise<Host*> {
        Host* h = findHost(generation);
        if (h != nullptr && !h->dead) {
          fprintf(stderr, "nbdcage: a new plugin host for '%s' did not get ready within %u s; killing it\n",
                  config_.plugin.c_str(), config_.requestTimeout);
          h->process.killAll();
        }
        return failed("the new plugin host did not get ready within " + std::to_string(config_.requestTimeout) +
                      " s");
      });
  return hello.exclusiveJoin(kj::mv(late));
}

kj::Promise<Supervisor::Host*> Supervisor::checkHello(Host& host) {
  uint64_t generation = host.generation;
  return rpcOf(host.rpc).hello().then([this, generation](HostClient::Hello hello) -> Host* {
    Host* h = findHost(generation);  // it may have died and been replaced since it answered
    if (h == nullptr) kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "the new plugin host died"));
    if (hello.protocolVersion != ipc::schema::PROTOCOL_VERSION) {
      h->process.killAll();
      kj::throwFatalException(KJ_EXCEPTION(FAILED, "the new plugin host speaks another protocol; reinstall nbdcage"));
    }
    return h;
  });
}

// Three unexpected deaths within 10 s is a crash loop: said once, with
// the plugin's last words (its last lines on stderr), so the reason is not
// lost among the restarts.
void Supervisor::reportCrashLoop(Host& host) {
  auto now = std::chrono::steady_clock::now();
  recentDeaths_.push_back(now);
  while (!recentDeaths_.empty() && now - recentDeaths_.front() > std::chrono::seconds(10)) recentDeaths_.pop_front();
  if (recentDeaths_.size() < 3 || toldCrashLoop_) return;
  toldCrashLoop_ = true;
  auto words = host.process.lastWords();  // all of them: it has been reaped
  fprintf(stderr, "nbdcage: the plugin host for '%s' keeps dying (%zu times in 10 s); its last words:\n",
          config_.plugin.c_str(), recentDeaths_.size());
  if (words.empty()) fprintf(stderr, "nbdcage:   (nothing on its stderr)\n");
  for (const auto& line : words) fprintf(stderr, "nbdcage:   %s\n", line.c_str());
}

void Supervisor::announceStopping() {
  // A host that cannot hear it any more is about to be stopped anyway.
  auto tell = [](Host& h) {
    if (!h.dead && !h.retired) h.rpc->announceStopping();
  };
  if (host_) tell(*host_);
  for (auto& [id, h] : dedicated_) tell(*h);
}

kj::Promise<void> Supervisor::stop() {
  handles_.clear();
  if (host_) retire(*host_);
  for (auto& [id, h] : dedicated_) retire(*h);
  // Give an orderly exit (cleanup, unload) a moment, then insist.
  return untilAllExited(io_.provider->getTimer().now() + kExitGrace).then([this]() {
    auto end = [this](Host& h) {
      if (!h.dead && h.process.running()) h.process.kill(SIGKILL);
      reap(h, true);
    };
    if (host_) end(*host_);
    for (auto& [id, h] : dedicated_) end(*h);
    host_ = nullptr;
    dedicated_.clear();
  });
}

// Looks on a timer, so the loop turns meanwhile.
kj::Promise<void> Supervisor::untilAllExited(kj::TimePoint deadline) {
  auto& timer = io_.provider->getTimer();
  bool running = host_ && !host_->dead && host_->process.running();
  for (auto& [id, h] : dedicated_) running = running || (!h->dead && h->process.running());
  if (!running || timer.now() >= deadline) return kj::READY_NOW;
  return timer.afterDelay(5 * kj::MILLISECONDS).then([this, deadline]() { return untilAllExited(deadline); });
}

// Loop thread: `call(host)` on a host ready for it (the shared one, a new
// one after a death, or with `dedicatedId` the client's own).  `call`
// returns a promise; a failure rejects with the words a client is told.
//
// The call has the request deadline: a host that does not answer in time
// (a plugin hung in open or list_exports, a stopped host) is killed, so
// the next call gets a new one.
template <typename T, typename Call>
kj::Promise<T> Supervisor::callHost(Call call, uint64_t dedicatedId) {
  kj::Promise<Host*> ready = nullptr;
  try {
    ready = dedicatedId != 0 ? checked(dedicatedHost(dedicatedId)) : sharedHost();
  } catch (const std::exception& e) {
    return failed(e.what());
  }
  auto shared = kj::heap<Call>(kj::mv(call));
  Call& again = *shared;
  return ready
      .then([this, &again](Host* host) -> kj::Promise<T> {
        // A shared host that dies under the call (killed a moment before
        // it came, say) is replaced, and the call made once more.  By
        // generation: when this runs, another call may have replaced it.
        uint64_t generation = host->generation;
        bool shared = !host->dedicated;
        auto answer = again(*host).catch_([this, generation, shared, &again](kj::Exception&& e) -> kj::Promise<T> {
          bool stillShared = shared && host_ && host_->generation == generation;
          if (e.getType() != kj::Exception::Type::DISCONNECTED || !stillShared) return kj::mv(e);
          return untilDead(generation).then([this]() { return sharedHost(); }).then([&again](Host* fresh) {
            return again(*fresh);
          });
        });
        if (config_.requestTimeout == 0) return answer;
        auto late = io_.provider->getTimer()
                        .afterDelay(config_.requestTimeout * kj::SECONDS)
                        .then([this, generation]() -> kj::Promise<T> {
                          Host* h = findHost(generation);
                          if (h != nullptr && !h->dead) h->process.killAll();
                          return failed("the plugin did not answer within " + std::to_string(config_.requestTimeout) +
                                        " s; its host is killed and replaced");
                        });
        return answer.exclusiveJoin(kj::mv(late));
      })
      .catch_([](kj::Exception&& e) -> kj::Promise<T> { return failed(whyCallFailed(e)); })
      .attach(kj::mv(shared));
}

kj::Own<RemoteHandle> Supervisor::open(const std::string& exportName, bool readonly, const chain::Client& client) {
  struct Opened {
    uint64_t id;
    ExportInfo info;
    kj::AutoCloseFd death;
  };
  // Shared with the loop's job, which may outlive this call (the client left).
  auto rings = std::make_shared<RingResources>(RingResources::create(RemoteHandle::kDataAreaSize));
  auto answer = std::make_shared<Answer<Opened>>();
  bool posted = inbox_.post([this, rings, answer, exportName, client, readonly = readonly || config_.readonly]() {
    // With --isolate=connection the handle's id is its host's key.
    uint64_t dedicatedId = config_.isolateConnections ? nextHandleId_++ : 0;
    auto call = [this, rings, dedicatedId, exportName, client, readonly](Host& host) {
      uint64_t id = dedicatedId != 0 ? dedicatedId : nextHandleId_++;
      uint64_t generation = host.generation;
      auto opening = rpcOf(host.rpc).open(id, exportName, readonly, *rings, client);
      return opening.then([this, id, generation](ExportInfo info) {
        Host* h = findHost(generation);
        if (h == nullptr || h->dead) hostGone();
        handles_[id] = generation;
        h->served = true;
        youngDeaths_ = 0;
        int death;  // the handle's own: it breaks when this becomes readable
        KJ_SYSCALL(death = fcntl(h->process.pidfd(), F_DUPFD_CLOEXEC, 3));
        return Opened{id, kj::mv(info), kj::AutoCloseFd(death)};
      });
    };
    calls_->add(callHost<Opened>(kj::mv(call), dedicatedId)
                   .then(
                       [this, answer](Opened o) {
                         uint64_t id = o.id;
                         if (!answer->give(kj::mv(o))) closeHandle(id);  // the client left meanwhile
                       },
                       [this, answer, dedicatedId](kj::Exception&& e) {
                         answer->refuse(e.getDescription().cStr());
                         if (dedicatedId != 0) closeHandle(dedicatedId);  // its own host goes with it
                       }));
  });
  if (!posted) throw HostError("nbdcage is shutting down");
  std::string failure;
  auto opened = answer->wait(failure, client.fd);
  if (!opened) {
    fprintf(stderr, "nbdcage: cannot open export '%s': %s\n", exportName.c_str(), failure.c_str());
    throw HostError(failure);
  }
  // The host has its own copies of its bells' ends now.
  rings->hostSubmitEnd = nullptr;
  rings->hostCompleteEnd = nullptr;
  uint64_t id = opened->id;
  // The connection waits for the plugin's close (bounded by its deadline)
  // before it closes its socket, as nbdkit does: a client that reconnects,
  // or sends NBD_OPT_GO after NBD_OPT_INFO, finds the handle closed (a
  // plugin such as ondemand locks an export while a handle holds it).
  auto onClose = [id, inbox = inbox_.poster(), this]() {
    auto closed = std::make_shared<Answer<bool>>();
    auto job = [this, id, done = Done(closed)]() { closeHandle(id, done); };
    if (!inbox.post(std::move(job))) return;  // the loop is gone, and the host with it
    std::string why;
    closed->wait(why);
  };
  return kj::heap<RemoteHandle>(std::move(*rings), kj::mv(opened->info), kj::mv(opened->death),
                                std::chrono::seconds(config_.requestTimeout), config_.plugin, std::move(onClose));
}

// Bounded like every call: a plugin hung in close has its host killed.
// `done` is told once the close has run, failed or been given up on.
void Supervisor::closeHandle(uint64_t id, Done done) {
  auto own = dedicated_.find(id);
  if (own != dedicated_.end()) {
    // The client's own host: its end closes the plugin's handle too, so
    // the close is over once that host has gone (kExitGrace at most).
    handles_.erase(id);
    retire(*own->second);
    calls_->add(untilReaped(own->second->generation).attach(kj::mv(done)));
    return;
  }
  auto it = handles_.find(id);
  if (it == handles_.end()) return;
  uint64_t generation = it->second;
  Host* host = findHost(generation);
  handles_.erase(it);
  if (host == nullptr || host->dead || !host->rpc) return;
  auto close = host->rpc->close(id).then([]() {}, [](kj::Exception&&) {});
  if (config_.requestTimeout != 0) {
    close = close.exclusiveJoin(
        io_.provider->getTimer().afterDelay(config_.requestTimeout * kj::SECONDS).then([this, generation]() {
          Host* h = findHost(generation);
          if (h == nullptr || h->dead) return;
          fprintf(stderr, "nbdcage: plugin '%s': close did not complete within %u s; its host is killed and replaced\n",
                  config_.plugin.c_str(), config_.requestTimeout);
          h->process.killAll();
        }));
  }
  calls_->add(close.attach(kj::mv(done)));
}

// Any other thread: `call(host)` made on the loop thread, and its answer
// waited for; a failure is a HostError with the words a client is told.
template <typename T, typename Call>
T Supervisor::ask(Call call) {
  auto answer = std::make_shared<Answer<T>>();
  bool posted = inbox_.post([this, answer, call = kj::mv(call)]() mutable {
    calls_->add(callHost<T>(kj::mv(call)).then([answer](T value) { answer->give(kj::mv(value)); },
                                              [answer](kj::Exception&& e) {
                                                answer->refuse(e.getDescription().cStr());
                                              }));
  });
  if (!posted) throw HostError("nbdcage is shutting down");
  std::string failure;
  auto value = answer->wait(failure);
  if (!value) throw HostError(failure);
  return kj::mv(*value);
}

std::vector<std::pair<std::string, std::string>> Supervisor::listExports(bool readonly) {
  using List = std::vector<std::pair<std::string, std::string>>;
  readonly = readonly || config_.readonly;
  return ask<List>([readonly](Host& host) { return rpcOf(host.rpc).listExports(readonly); });
}

std::string Supervisor::defaultExport(bool readonly) {
  readonly = readonly || config_.readonly;
  try {
    return ask<std::string>([readonly](Host& host) { return rpcOf(host.rpc).defaultExport(readonly); });
  } catch (const HostError& e) {
    fprintf(stderr, "nbdcage: cannot open export '' (the plugin's default): %s\n", e.what());
    throw;
  }
}

int probePlugin(const Config& config, const SandboxPolicy& sandbox, Probe what) {
  std::vector<std::string> args = {what == Probe::kDump ? "--dump-plugin"
                                   : what == Probe::kHelp ? "--plugin-help"
                                                          : "--plugin-version"};
  HostProcess::Spec spec;
  giveStdio(config, args, spec);
  appendPluginArgs(config, sandbox, args);
  spec.path = config.hostPath;
  spec.args = std::move(args);
  spec.env = sandbox.hostEnv();
  spec.startDir = std::filesystem::current_path().string();
  spec.stdoutFd = STDOUT_FILENO;  // the facts are for our caller
  spec.namespaces = sandbox.enabled;
  spec.network = sandbox.network;
  try {
    auto probe = HostProcess::spawn(spec);
    int code = probe.wait();
    if (WIFSIGNALED(code)) {
      fprintf(stderr, "nbdcage: the plugin host crashed while loading '%s' (signal %d)\n", config.plugin.c_str(),
              WTERMSIG(code));
      return 1;
    }
    return WEXITSTATUS(code);
  } catch (const std::exception& e) {
    fprintf(stderr, "nbdcage: cannot start the plugin host: %s\n", e.what());
    return 1;
  }
}

}  // namespace nbdcage::frontend
