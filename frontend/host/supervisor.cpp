#include "frontend/host/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <kj/debug.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontend/host/host-process.h"
#include "frontend/host/validate.h"
#include "frontend/lifecycle/log.h"

#include <filesystem>
#include <cstdio>
#include <optional>
#include <thread>

namespace nbdcage::frontend {

namespace schema = ipc::schema;

struct Supervisor::Host {
  std::optional<HostProcess> process;
  kj::AutoCloseFd pidfd;
  kj::Own<kj::AsyncCapabilityStream> stream;
  kj::Own<capnp::TwoPartyVatNetwork> network;
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
  schema::PluginHost::Client client = nullptr;
  kj::Own<kj::UnixEventPort::FdObserver> observer;
  kj::Promise<void> watch = nullptr;  // declared after observer: destroyed first
  kj::Promise<void> deafWatch = nullptr;  // declared after network: destroyed first
  std::thread relay;                  // copies the host's stderr into ours
  std::shared_ptr<lifecycle::LastLines> lastWords = std::make_shared<lifecycle::LastLines>();
  kj::Promise<void> shutdownWatch = nullptr;  // the outstanding waitForShutdown
  kj::Promise<void> stopping = nullptr;       // the serverStopping call, once sent
  ~Host() {
    if (relay.joinable()) relay.join();  // ends once the host is gone
  }
  uint64_t generation = 0;
  bool dead = false;
  bool dedicated = false;  // one client's (--isolate=connection)
  bool retired = false;    // its client left: its end is expected
};

namespace {

// What a client is told when a call to its host failed.
std::string whyCallFailed(const kj::Exception& e) {
  return e.getType() == kj::Exception::Type::DISCONNECTED ? "the plugin host died" : e.getDescription().cStr();
}

// Hands one of our descriptors to the host inside an RPC message.
class FdCap final : public schema::FileDescriptor::Server {
 public:
  explicit FdCap(int fd) {
    int copy;
    KJ_SYSCALL(copy = fcntl(fd, F_DUPFD_CLOEXEC, 3));
    fd_ = kj::AutoCloseFd(copy);
  }
  kj::Maybe<int> getFd() override { return fd_.get(); }

 private:
  kj::AutoCloseFd fd_;
};

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

}  // namespace

Supervisor::Supervisor(const Config& config, const SandboxPolicy& sandbox, kj::AsyncIoContext& io)
    : config_(config),
      sandbox_(sandbox),
      io_(io),
      executor_(kj::getCurrentThreadExecutor().addRef()),
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
    if (!h.dead) h.process->killAll();
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

void Supervisor::retire(Host& host) {
  host.retired = true;
  host.deafWatch = nullptr;
  host.stopping = nullptr;
  host.shutdownWatch = nullptr;
  host.client = nullptr;
  host.rpc = nullptr;
  host.network = nullptr;
  host.stream = nullptr;  // the host sees EOF and exits; its watch reaps it
}

void Supervisor::watchForShutdown(Host& host) {
  host.shutdownWatch = host.client.waitForShutdownRequest()
                           .send()
                           .then([this](auto&&) { stopFulfiller_->fulfill(); },
                                 [](kj::Exception&&) {})  // a host that dies asks nothing
                           .eagerlyEvaluate(nullptr);
}

Supervisor::~Supervisor() { stopHost(); }

kj::Own<Supervisor::Host> Supervisor::spawnHost() {
  int sv[2];
  KJ_SYSCALL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
  kj::AutoCloseFd ours(sv[0]), theirs(sv[1]);
  std::vector<std::string> args;
  if (config_.verbose) args.push_back("--verbose");
  if (config_.readonly) args.push_back("--readonly");
  args.push_back("--threads");
  args.push_back(std::to_string(config_.threads));
  appendPluginArgs(config_, sandbox_, args);

  int errPipe[2];
  KJ_SYSCALL(pipe2(errPipe, O_CLOEXEC));
  kj::AutoCloseFd errRead(errPipe[0]), errWrite(errPipe[1]);
  auto host = kj::heap<Host>();
  HostProcess::Spec spec;
  spec.path = config_.hostPath;
  spec.args = std::move(args);
  spec.env = sandbox_.hostEnv();
  // Always the directory nbdcage started in: a daemon has left it, but a
  // restarted host must resolve relative parameters as the first one did.
  spec.startDir = startDir_;
  spec.controlFd = theirs.get();
  spec.stderrFd = errWrite.get();  // messages go through our log
  spec.namespaces = sandbox_.enabled;
  spec.network = sandbox_.network;
  try {
    host->process.emplace(HostProcess::spawn(spec));
  } catch (const std::exception& e) {
    throw HostError(std::string("cannot start the plugin host: ") + e.what());
  }
  if (sandbox_.enabled && host->process->namespaces() == 0 && !toldNoNamespaces_) {
    toldNoNamespaces_ = true;
    fprintf(stderr, "nbdcage: sandbox: this kernel refuses new namespaces; the plugin host shares the machine's "
                    "PID, mount and network namespaces (its other layers still hold)\n");
  }
  theirs = nullptr;
  errWrite = nullptr;
  int pidfd;
  KJ_SYSCALL(pidfd = fcntl(host->process->pidfd(), F_DUPFD_CLOEXEC, 3));
  host->pidfd = kj::AutoCloseFd(pidfd);
  try {
    host->relay = lifecycle::relayLines(kj::mv(errRead), pidfd, /*limited=*/!config_.verbose, host->lastWords);
  } catch (const std::system_error& e) {  // no thread to relay its messages: no host
    host->process->killAll();
    host->process->wait();
    throw HostError(std::string("cannot start the plugin host: no thread for its messages (") + e.what() + ")");
  }
  host->stream = io_.lowLevelProvider->wrapUnixSocketFd(ours.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  // capnp 0.9 has one fd limit for both directions, and sends none when it
  // is 0, so it must be 3 (open's three descriptors).  The frontend still
  // takes no descriptor from a host: it never calls getFd() on a host's
  // capability, so whatever a host attaches is closed with its message.
  host->network = kj::heap<capnp::TwoPartyVatNetwork>(*host->stream, 3, capnp::rpc::twoparty::Side::CLIENT);
  host->rpc = kj::heap(capnp::makeRpcClient(*host->network));
  capnp::word scratch[4];
  memset(scratch, 0, sizeof scratch);
  capnp::MallocMessageBuilder message(scratch);
  auto vatId = message.getRoot<capnp::rpc::twoparty::VatId>();
  vatId.setSide(capnp::rpc::twoparty::Side::SERVER);
  host->client = host->rpc->bootstrap(vatId).castAs<schema::PluginHost>();
  host->generation = ++generation_;
  lastSpawn_ = std::chrono::steady_clock::now();
  return host;
}

void Supervisor::watchHost(Host& host) {
  host.observer = kj::heap<kj::UnixEventPort::FdObserver>(io_.unixEventPort, host.pidfd.get(),
                                                          kj::UnixEventPort::FdObserver::OBSERVE_READ);
  host.watch = host.observer->whenBecomesReadable().then([this, &host]() { reap(host, false); }).eagerlyEvaluate(nullptr);
  // A host that shuts its end of the RPC socket and lives on is as good as
  // dead: it is killed, so its connections fail and the next gets a new one.
  host.deafWatch = host.network->onDisconnect()
                       .then([&host]() {
                         // (A host that died closed it too: its watch says so.)
                         if (!host.dead && host.process->running()) {
                           fprintf(stderr, "nbdcage: the plugin host (pid %d) closed its control socket; killing it\n",
                                   host.process->pid());
                           host.process->killAll();
                         }
                       })
                       .eagerlyEvaluate(nullptr);
}

int Supervisor::reap(Host& host, bool expected) {
  if (host.dead) return host.process->wait();
  host.dead = true;
  expected = expected || host.retired;
  int code = host.process->wait();
  // Whatever the plugin started (scripts, helpers) goes with its host.
  host.process->killAll();
  if (!expected) {
    std::string how = WIFSIGNALED(code) ? "was killed by signal " + std::to_string(WTERMSIG(code))
                                        : "exited with status " + std::to_string(WEXITSTATUS(code));
    // A client's own host held that client's data only: the next client
    // gets its own host anyway.
    std::string policy = host.dedicated && config_.onCrash() == "fail" ? "restart" : config_.onCrash();
    const char* next = policy == "restart" ? "a new one serves the next connection"
                       : policy == "fail"  ? "its data went with it, so the export is refused from now on"
                                           : "nbdcage exits";
    fprintf(stderr, "nbdcage: the plugin host (pid %d) %s; %s\n", host.process->pid(), how.c_str(), next);
    reportCrashLoop(host);
    if (policy == "fail" && lost_.empty())
      lost_ = "the plugin host for '" + config_.plugin + "' " + how +
              ", and the data it kept in memory went with it; restart nbdcage (see --on-plugin-crash)";
    if (policy == "exit") crashFulfiller_->fulfill(1);
  }
  return code;
}

int Supervisor::start() {
  kj::Own<Host> host;
  try {
    host = spawnHost();
  } catch (const HostError& e) {
    fprintf(stderr, "nbdcage: %s\n", e.what());
    return 1;
  }
  auto req = host->client.helloRequest();
  req.setProtocolVersion(schema::PROTOCOL_VERSION);
  kj::Maybe<kj::Exception> failure;
  uint32_t version = 0;
  try {
    auto resp = req.send().wait(io_.waitScope);
    version = resp.getProtocolVersion();
    if (config_.verbose)
      fprintf(stderr, "nbdcage: debug: plugin host %d (%s) serves %s (API v%u, thread model %u)\n",
              host->process->pid(), config_.hostPath.c_str(), resp.getPlugin().getName().cStr(),
              resp.getPlugin().getApiVersion(), resp.getPlugin().getThreadModel());
  } catch (const kj::Exception& e) {
    failure = e;
  }
  if (failure != nullptr || version != schema::PROTOCOL_VERSION) {
    host->stream->shutdownWrite();
    host->rpc = nullptr;
    host->network = nullptr;
    host->stream = nullptr;
    int code = reap(*host, true);
    if (host->relay.joinable()) host->relay.join();  // the host's last words first
    if (version != 0 && version != schema::PROTOCOL_VERSION) {
      fprintf(stderr, "nbdcage: %s speaks protocol %u, this nbdcage speaks %u: reinstall nbdcage\n",
              config_.hostPath.c_str(), version, schema::PROTOCOL_VERSION);
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
    struct pollfd p = {host_->pidfd.get(), POLLIN, 0};
    if (poll(&p, 1, 0) > 0) reap(*host_, false);
  }
  if (host_ && !host_->dead) return host_.get();
  // A new host would serve a new, empty disk under the same name.
  if (!lost_.empty()) throw HostError(lost_);
  // Back off: a plugin that dies at once must not make us fork in a loop.
  // On a timer: the loop never sleeps (other connections are served
  // meanwhile), and whoever comes after the wait looks again.
  auto wait = lastSpawn_ + std::chrono::milliseconds(200) - std::chrono::steady_clock::now();
  if (wait.count() > 0) {
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    return io_.provider->getTimer().afterDelay(ms * kj::MILLISECONDS).then([this]() { return sharedHost(); });
  }
  if (host_) {
    stopOne(*host_);  // only the dead shared host: clients' own hosts stay
    host_ = nullptr;
  }
  host_ = spawnHost();
  watchHost(*host_);
  watchForShutdown(*host_);
  return checked(*host_);
}

// Resolves once the host of `generation` is reaped: it is disconnected,
// so it is killed to be sure, and its pidfd is looked at on a timer (the
// loop never sleeps).  By generation, not reference: another call that
// waited for the same host may have replaced (and freed) it meanwhile.
kj::Promise<void> Supervisor::untilDead(uint64_t generation) {
  Host* host = findHost(generation);
  if (host != nullptr && !host->dead) {
    struct pollfd p = {host->pidfd.get(), POLLIN, 0};
    if (poll(&p, 1, 0) > 0) reap(*host, false);
  }
  if (host == nullptr || host->dead) return kj::READY_NOW;
  host->process->killAll();
  return io_.provider->getTimer().afterDelay(2 * kj::MILLISECONDS).then([this, generation]() {
    return untilDead(generation);
  });
}

// A new host is checked as the first one was: it must say hello in our
// protocol before it is asked anything else.
kj::Promise<Supervisor::Host*> Supervisor::checked(Host& host) {
  auto req = host.client.helloRequest();
  req.setProtocolVersion(schema::PROTOCOL_VERSION);
  uint64_t generation = host.generation;
  return req.send().then([this, generation](capnp::Response<schema::PluginHost::HelloResults>&& resp) -> Host* {
    Host* h = findHost(generation);  // it may have died and been replaced since it answered
    if (h == nullptr) kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "the new plugin host died"));
    if (resp.getProtocolVersion() != schema::PROTOCOL_VERSION) {
      h->process->killAll();
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
  if (host.relay.joinable()) host.relay.join();  // its last lines are in
  fprintf(stderr, "nbdcage: the plugin host for '%s' keeps dying (%zu times in 10 s); its last words:\n",
          config_.plugin.c_str(), recentDeaths_.size());
  auto words = host.lastWords->get();
  if (words.empty()) fprintf(stderr, "nbdcage:   (nothing on its stderr)\n");
  for (const auto& line : words) fprintf(stderr, "nbdcage:   %s\n", line.c_str());
}

void Supervisor::announceStopping() {
  // A host that cannot hear it any more is about to be stopped anyway.
  auto tell = [](Host& h) {
    if (h.dead || h.retired) return;
    h.stopping = h.client.serverStoppingRequest().send().ignoreResult().catch_([](kj::Exception&&) {}).eagerlyEvaluate(nullptr);
  };
  if (host_) tell(*host_);
  for (auto& [id, h] : dedicated_) tell(*h);
}

void Supervisor::stopOne(Host& host) {
  retire(host);
  if (!host.dead) {
    // Give an orderly exit (cleanup, unload) a moment, then insist.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (host.process->running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (host.process->running()) host.process->kill(SIGKILL);
    reap(host, true);
  }
}

void Supervisor::stopHost() {
  handles_.clear();
  if (host_) stopOne(*host_);
  host_ = nullptr;
  for (auto& [id, h] : dedicated_) stopOne(*h);
  dedicated_.clear();
}

// Runs `call(host)` on the loop thread (starting a host if none runs) and
// waits for it.  Any failure becomes nullopt with `failure` saying why.
//
// The call has the request deadline: a host that does not answer in time
// (a plugin hung in open or list_exports, a stopped host) is killed, so
// the next call gets a new one.
template <typename T, typename Call>
kj::Maybe<T> Supervisor::callHost(std::string& failure, Call&& call, uint64_t dedicatedId) {
  return executor_->executeSync([&]() -> kj::Promise<kj::Maybe<T>> {
    kj::Promise<Host*> ready = nullptr;
    try {
      ready = dedicatedId != 0 ? checked(dedicatedHost(dedicatedId)) : sharedHost();
    } catch (const std::exception& e) {
      failure = e.what();
      return kj::Maybe<T>(nullptr);
    }
    return ready.then(
        [this, &failure, &call](Host* host) -> kj::Promise<kj::Maybe<T>> {
          // A shared host that dies under the call (killed a moment before
          // it came, say) is replaced, and the call made once more.  By
          // generation: when this runs, another call may have replaced it.
          uint64_t generation = host->generation;
          bool shared = !host->dedicated;
          auto answer = call(host).catch_([this, generation, shared, &failure, &call](
                                              kj::Exception&& e) -> kj::Promise<kj::Maybe<T>> {
            bool stillShared = shared && host_ && host_->generation == generation;
            if (e.getType() == kj::Exception::Type::DISCONNECTED && stillShared) {
              return untilDead(generation)
                  .then([this]() { return sharedHost(); })
                  .then([&call](Host* fresh) { return call(fresh); })
                  .catch_([&failure](kj::Exception&& e) -> kj::Maybe<T> {
                    failure = whyCallFailed(e);
                    return nullptr;
                  });
            }
            failure = whyCallFailed(e);
            return kj::Maybe<T>(nullptr);
          });
          if (config_.requestTimeout == 0) return answer;
          auto late = io_.provider->getTimer()
                          .afterDelay(config_.requestTimeout * kj::SECONDS)
                          .then([this, generation, &failure]() -> kj::Maybe<T> {
                            failure = "the plugin did not answer within " + std::to_string(config_.requestTimeout) +
                                      " s; its host is killed and replaced";
                            Host* h = findHost(generation);
                            if (h != nullptr && !h->dead) h->process->killAll();
                            return nullptr;
                          });
          return answer.exclusiveJoin(kj::mv(late));
        },
        [&failure](kj::Exception&& e) -> kj::Maybe<T> {  // no host after the back-off
          failure = e.getDescription().cStr();
          return nullptr;
        });
  });
}

kj::Own<RemoteHandle> Supervisor::open(const std::string& exportName, bool readonly, const chain::Client& client) {
  auto rings = RingResources::create(RemoteHandle::kDataAreaSize);
  struct Opened {
    uint64_t id;
    ExportInfo info;
    kj::AutoCloseFd death;
  };
  std::string failure;
  // With --isolate=connection the handle's id is its host's key, so it is
  // taken before the open (on the loop thread, as every use of the counter).
  uint64_t dedicatedId = 0;
  if (config_.isolateConnections) dedicatedId = executor_->executeSync([this] { return nextHandleId_++; });
  auto opened = callHost<Opened>(failure, [&](Host* host) {
    auto req = host->client.openRequest();
    req.setExportName(exportName);
    req.setReadonly(readonly || config_.readonly);
    auto r = req.initRings();
    r.setRegion(kj::heap<FdCap>(rings.region.fd()));
    r.setRegionSize(rings.region.size());
    r.setSubmitBell(kj::heap<FdCap>(rings.hostSubmitEnd.get()));
    r.setCompleteBell(kj::heap<FdCap>(rings.hostCompleteEnd.get()));
    auto peer = req.initPeer();
    peer.setAddress(kj::arrayPtr(client.address.data(), client.address.size()));
    if (client.credentials) {
      peer.setHasCredentials(true);
      peer.setPid(client.credentials->pid);
      peer.setUid(client.credentials->uid);
      peer.setGid(client.credentials->gid);
    }
    uint64_t generation = host->generation;
    int pidfd = host->pidfd.get();
    return req.send()
        .then([this, generation, pidfd, dedicatedId, &failure](
                  capnp::Response<schema::PluginHost::OpenResults>&& resp) -> kj::Maybe<Opened> {
          try {
            Opened o{dedicatedId != 0 ? dedicatedId : nextHandleId_++, validateExport(resp.getExport()), {}};
            handles_.emplace(o.id, std::make_pair(generation, resp.getHandle()));
            int death;
            KJ_SYSCALL(death = fcntl(pidfd, F_DUPFD_CLOEXEC, 3));
            o.death = kj::AutoCloseFd(death);
            return kj::mv(o);
          } catch (const HostError& e) {
            failure = e.what();
            return nullptr;
          }
        });
  }, dedicatedId);
  // The host has its own copies of its bells' ends now.
  rings.hostSubmitEnd = nullptr;
  rings.hostCompleteEnd = nullptr;
  KJ_IF_MAYBE(o, opened) {
    uint64_t id = o->id;
    auto executor = std::make_shared<kj::Own<const kj::Executor>>(executor_->addRef());
    auto onClose = [this, id, executor]() {
      try {
        (*executor)->executeSync([this, id]() { return closeHandle(id); });
      } catch (const kj::Exception&) {
        // The loop is gone: the host goes with it.
      }
    };
    return kj::heap<RemoteHandle>(std::move(rings), kj::mv(o->info), kj::mv(o->death),
                                  std::chrono::seconds(config_.requestTimeout), config_.plugin, std::move(onClose));
  }
  fprintf(stderr, "nbdcage: cannot open export '%s': %s\n", exportName.c_str(), failure.c_str());
  if (dedicatedId != 0) {
    try {  // the client's own host goes with its failed open
      executor_->executeSync([this, dedicatedId]() { return closeHandle(dedicatedId); });
    } catch (const kj::Exception&) {
    }
  }
  throw HostError(failure);
}

kj::Promise<void> Supervisor::closeHandle(uint64_t id) {
  auto own = dedicated_.find(id);
  if (own != dedicated_.end()) {
    // The client's own host: its end closes the plugin's handle too.
    handles_.erase(id);
    retire(*own->second);
    return kj::READY_NOW;
  }
  auto it = handles_.find(id);
  if (it == handles_.end()) return kj::READY_NOW;
  auto [generation, cap] = std::move(it->second);
  handles_.erase(it);
  Host* host = findHost(generation);
  if (host == nullptr || host->dead) return kj::READY_NOW;
  return cap.closeRequest().send().ignoreResult().catch_([](kj::Exception&&) {});
}

std::vector<std::pair<std::string, std::string>> Supervisor::listExports(bool readonly) {
  using List = std::vector<std::pair<std::string, std::string>>;
  std::string failure;
  auto result = callHost<List>(failure, [&](Host* host) {
    auto req = host->client.listExportsRequest();
    req.setReadonly(readonly || config_.readonly);
    return req.send()
        .then([&failure](capnp::Response<schema::PluginHost::ListExportsResults>&& resp) -> kj::Maybe<List> {
          try {
            return validateExportList(resp.getExports());
          } catch (const HostError& e) {
            failure = e.what();
            return nullptr;
          }
        });
  });
  KJ_IF_MAYBE(list, result) { return kj::mv(*list); }
  throw HostError(failure);
}

int probePlugin(const Config& config, const SandboxPolicy& sandbox, bool dumpAll) {
  std::vector<std::string> args = {dumpAll ? "--dump-plugin" : "--plugin-version"};
  appendPluginArgs(config, sandbox, args);
  HostProcess::Spec spec;
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
