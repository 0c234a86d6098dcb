#include "frontend/server.h"

#include <kj/debug.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <initializer_list>
#include <system_error>
#include <thread>

#include "frontend/lifecycle/captive.h"
#include "frontend/lifecycle/shutdown-request.h"
#include "frontend/listen/listeners.h"
#include "frontend/listen/socket-activation.h"
#include "frontend/nbd/transmission.h"

namespace nbdcage {

uint64_t ConnectionSet::add(int fd) {
  std::lock_guard lock(lock_);
  live_.emplace(next_, fd);
  return next_++;
}

void ConnectionSet::remove(uint64_t id) {
  std::lock_guard lock(lock_);
  live_.erase(id);
}

void ConnectionSet::shutdownAll() {
  std::lock_guard lock(lock_);
  // Only the reading side: a connection sees EOF, finishes what it has in
  // flight, sends those replies, and ends; an idle one ends at once.
  for (auto& [id, fd] : live_) ::shutdown(fd, SHUT_RD);
}

size_t ConnectionSet::size() const {
  std::lock_guard lock(lock_);
  return live_.size();
}

namespace {

// One connection, start to end, on the calling thread.
// A filter's preconnect refusal closes it before the greeting.
void serveConnection(nbd::Stream& stream, chain::Chain& chain, const Config& config) {
  chain::Client client = chain::Client::of(stream.inFd());
  if (!chain.preconnect(client)) return;
  KJ_DEFER(chain.disconnect());
  try {
    nbd::Handshake handshake(stream, chain, config.readonly, client);
    // A client that will not finish negotiating must not hold a thread
    // for ever (as qemu-nbd after CVE-2024-7409): only the time spent
    // waiting for the client counts, not the plugin's open.
    if (config.handshakeTimeout > 0) stream.setWaitBudget(std::chrono::seconds(config.handshakeTimeout));
    auto negotiated = handshake.run();
    stream.setWaitBudget(std::nullopt);
    if (stream.timedOut()) {
      fprintf(stderr, "nbdcage: a client did not finish the handshake within %u s; dropped\n", config.handshakeTimeout);
      return;
    }
    if (!negotiated) return;
    nbd::Transmission(stream, *negotiated).run();
  } catch (const std::exception& e) {
    fprintf(stderr, "nbdcage: connection ended: %s\n", e.what());
  } catch (const kj::Exception& e) {
    fprintf(stderr, "nbdcage: connection ended: %s\n", e.getDescription().cStr());
  }
}

class Acceptor {
 public:
  Acceptor(kj::UnixEventPort& port, listen::Listener listener, ConnectionSet& conns, chain::Chain& chain,
           const Config& config)
      : listener_(kj::mv(listener)),
        observer_(port, listener_.fd.get(), kj::UnixEventPort::FdObserver::OBSERVE_READ),
        conns_(conns),
        chain_(chain),
        config_(config) {}

  kj::Promise<void> run() {
    return observer_.whenBecomesReadable().then([this]() {
      acceptAll();
      return run();
    });
  }

 private:
  void acceptAll() {
    for (;;) {
      int fd = accept4(listener_.fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) perror("nbdcage: accept");
        return;  // edge-triggered: drained
      }
      if (config_.maxConnections != 0 && conns_.size() >= config_.maxConnections) {
        refuse(fd);
        continue;
      }
      if (listener_.tcp) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (config_.keepalive) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      }
      uint64_t id = conns_.add(fd);
      // The thread may outlive this acceptor (which goes when shutdown
      // starts), never the ConnectionSet and chain: serve() waits for it.
      try {
        std::thread([fd, id, &conns = conns_, &chain = chain_, &config = config_] {
          nbd::Stream stream(fd, fd);
          serveConnection(stream, chain, config);
          conns.remove(id);
          close(fd);
        }).detach();
      } catch (const std::system_error& e) {
        // Out of threads (a pids limit, RLIMIT_NPROC): this client goes,
        // the server and its other clients stay.
        fprintf(stderr, "nbdcage: cannot serve a new connection: no thread for it (%s)\n", e.what());
        conns_.remove(id);
        close(fd);
      }
    }
  }

  // Past --max-connections: closed before the greeting, costing no
  // thread; said at most once a second, with the count since.
  void refuse(int fd) {
    close(fd);
    ++refused_;
    auto now = std::chrono::steady_clock::now();
    if (refused_ == 1 || now - lastSaid_ >= std::chrono::seconds(1)) {
      fprintf(stderr, "nbdcage: %u clients are connected (--max-connections): refused %llu new connection%s\n",
              config_.maxConnections, static_cast<unsigned long long>(refused_ - saidUpTo_),
              refused_ - saidUpTo_ == 1 ? "" : "s");
      saidUpTo_ = refused_;
      lastSaid_ = now;
    }
  }

  listen::Listener listener_;
  kj::UnixEventPort::FdObserver observer_;
  uint64_t refused_ = 0, saidUpTo_ = 0;
  std::chrono::steady_clock::time_point lastSaid_;
  ConnectionSet& conns_;
  chain::Chain& chain_;
  const Config& config_;
};

kj::Promise<void> waitUntilEmpty(kj::Timer& timer, ConnectionSet& conns, kj::TimePoint deadline) {
  if (conns.size() == 0 || timer.now() >= deadline) return kj::READY_NOW;
  return timer.afterDelay(5 * kj::MILLISECONDS).then([&timer, &conns, deadline]() {
    return waitUntilEmpty(timer, conns, deadline);
  });
}

// Resolves with 0 at the first of `signals`.
kj::Promise<int> onSignals(kj::UnixEventPort& port, std::initializer_list<int> signals) {
  kj::Promise<int> p = kj::NEVER_DONE;
  for (int sig : signals) p = p.exclusiveJoin(port.onSignal(sig).then([](siginfo_t) { return 0; }));
  return p;
}

// Passes `sig` on to the command, every time it comes.  Never resolves.
kj::Promise<int> forwardToCommand(kj::UnixEventPort& port, lifecycle::CaptiveCommand& cmd, int sig) {
  return port.onSignal(sig).then([&port, &cmd, sig](siginfo_t) {
    cmd.signal(sig);
    return forwardToCommand(port, cmd, sig);
  });
}

// The command's exit status, with `forwarded` signals passed on to it
// meanwhile (nbdcage then ends when the command does, with its status).
kj::Promise<int> commandExit(kj::UnixEventPort& port, lifecycle::CaptiveCommand& cmd,
                             std::initializer_list<int> forwarded) {
  kj::Promise<int> p = cmd.exited(port);
  for (int sig : forwarded) p = p.exclusiveJoin(forwardToCommand(port, cmd, sig));
  return p;
}

}  // namespace

// One serving run: listeners (or stdin/stdout), connections, the captive
// command, and the orderly shutdown.  Lives on serve()'s stack.
class Server {
 public:
  Server(const Config& config, kj::AsyncIoContext& io, frontend::Supervisor& supervisor, chain::Chain& chain,
         lifecycle::ShutdownRequest& stop)
      : config_(config), io_(io), supervisor_(supervisor), chain_(chain), stop_(stop) {}

  int run(const std::function<bool()>& ready) {
    // Filters start before any connection thread can reach them.
    chain_.start(stop_);
    kj::Promise<int> done = kj::NEVER_DONE;
    try {
      if (config_.single) {
        if (!ready()) return 1;
        done = startSingle();
      } else {
        lifecycle::Endpoint ep;
        done = startListeners(ep);
        if (config_.printUri && !config_.socketActivation) {
          printf("%s\n", lifecycle::nbdUri(ep, config_.exportName).c_str());
          fflush(stdout);
        }
        if (!ready()) return 1;
        if (config_.run) done = done.exclusiveJoin(startCommand(ep));
      }
    } catch (const std::runtime_error& e) {  // ListenError too
      fprintf(stderr, "nbdcage: %s\n", e.what());
      return 1;
    }
    // A plugin's nbdkit_shutdown(), or a filter, stops the server as SIGTERM would.
    done = done.exclusiveJoin(supervisor_.pluginAskedToStop().then([] { return kStopAsked; }));
    done = done.exclusiveJoin(supervisor_.crashExit());
    done = done.exclusiveJoin(stop_.requested().then([] { return kStopAsked; }));
    if (captive_)
      done = done.exclusiveJoin(onSignals(io_.unixEventPort, {SIGQUIT, SIGHUP}));
    else
      done = done.exclusiveJoin(onSignals(io_.unixEventPort, {SIGTERM, SIGINT, SIGQUIT, SIGHUP}));
    int status = done.wait(io_.waitScope);
    if (status != kStopAsked) return shutdown(status);
    if (!captive_) return shutdown(0);
    // Asked from inside while a --run command runs: as nbdkit, the server
    // stops and the command goes on; its status is nbdcage's.
    shutdown(0, /*keepCommand=*/true);
    fprintf(stderr, "nbdcage: the server has stopped; waiting for the --run command to end\n");
    return waitForCommand();
  }

 private:
  // -s: the one connection on stdin/stdout, on a thread of its own.
  kj::Promise<int> startSingle() {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<int>();
    // std::thread needs a functor with a noexcept destructor; kj::Own isn't.
    auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<int>>>(kj::mv(paf.fulfiller));
    single_ = std::thread([this, fulfiller]() {
      uint64_t id = conns_.add(STDIN_FILENO);
      nbd::Stream stream(STDIN_FILENO, STDOUT_FILENO);
      serveConnection(stream, chain_, config_);
      conns_.remove(id);
      (*fulfiller)->fulfill(0);
    });
    return kj::mv(paf.promise);
  }

  // Opens the listeners and starts accepting; `ep` says where, for --run.
  kj::Promise<int> startListeners(lifecycle::Endpoint& ep) {
    std::vector<listen::Listener> listeners;
    if (config_.socketActivation) {
      listeners = listen::takeActivatedSockets();
    } else if (config_.vsock) {
      ep.port = config_.port.value_or("10809");
      ep.vsock = true;
      listeners.push_back(listen::listenVsock(static_cast<uint32_t>(std::stoul(*ep.port))));
    } else if (config_.unixSocket || (config_.run && !config_.port && !config_.ipaddr)) {  // --run implies -U -
      if (!config_.unixSocket || *config_.unixSocket == "-") {
        privateDir_ = std::make_unique<listen::PrivateSocketDir>();
        ep.unixSocket = privateDir_->socketPath();
      } else {
        ep.unixSocket = userSocket_ = std::filesystem::absolute(*config_.unixSocket).string();
      }
      listeners.push_back(listen::listenUnix(*ep.unixSocket));
    } else {
      ep.port = config_.port.value_or("10809");
      ep.host = config_.ipaddr;
      int family = config_.ipFamily == 4 ? AF_INET : config_.ipFamily == 6 ? AF_INET6 : AF_UNSPEC;
      listeners = listen::listenTcp(config_.ipaddr, *ep.port, family);
    }
    kj::Promise<int> done = kj::NEVER_DONE;
    for (auto& l : listeners) {
      auto a = kj::heap<Acceptor>(io_.unixEventPort, kj::mv(l), conns_, chain_, config_);
      done = done.exclusiveJoin(a->run().then([]() { return 0; }));
      acceptors_.push_back(kj::mv(a));
    }
    return done;
  }

  // --run: resolves with the command's status; SIGTERM and SIGINT go to it.
  kj::Promise<int> startCommand(const lifecycle::Endpoint& ep) {
    captive_ = std::make_unique<lifecycle::CaptiveCommand>(lifecycle::captiveScript(ep, config_.exportName, *config_.run));
    return commandExit(io_.unixEventPort, *captive_, {SIGTERM, SIGINT});
  }

  // Orderly shutdown: stop accepting, end connections, wait for them
  // (their handles close through the loop, so keep it turning), then the host.
  int shutdown(int status, bool keepCommand = false) {
    acceptors_.clear();
    if (captive_ && !keepCommand) captive_->signal(SIGTERM);
    supervisor_.announceStopping();  // a plugin asleep in nbdkit_nanosleep wakes up
    conns_.shutdownAll();
    auto& timer = io_.provider->getTimer();
    // A second signal means: now.
    auto again = onSignals(io_.unixEventPort, {SIGTERM, SIGINT, SIGQUIT, SIGHUP}).fork();
    bool hurry = waitUntilEmpty(timer, conns_, timer.now() + 10 * kj::SECONDS)
                     .then([] { return false; })
                     .exclusiveJoin(again.addBranch().then([](int) { return true; }))
                     .wait(io_.waitScope);
    if (conns_.size() > 0 && !hurry) {
      // Requests stuck in the plugin: killing its hosts fails them with
      // EIO, and each connection sends those replies before it ends.  (No
      // blocking wait here: the loop must keep turning, and its timer
      // with it, for the connections' closes to go through.)
      supervisor_.killHostNow();
      waitUntilEmpty(timer, conns_, timer.now() + 5 * kj::SECONDS).wait(io_.waitScope);
    }
    if (userSocket_) unlink(userSocket_->c_str());
    privateDir_.reset();
    if (conns_.size() > 0) {
      // A connection thread is still blocked (e.g. -s reading a stdin that
      // is not a socket).  It uses this object, so do not unwind it.
      fprintf(stderr, "nbdcage: %zu connection(s) did not end; exiting anyway\n", conns_.size());
      fflush(stderr);
      supervisor_.killHostNow();
      _exit(status);
    }
    if (single_.joinable()) single_.join();
    supervisor_.stop().wait(io_.waitScope);  // the loop turns meanwhile
    return status;
  }

  // The command's status once the server is gone; every stopping signal
  // goes to the command meanwhile.
  int waitForCommand() {
    return commandExit(io_.unixEventPort, *captive_, {SIGTERM, SIGINT, SIGQUIT, SIGHUP}).wait(io_.waitScope);
  }

  static constexpr int kStopAsked = -1;  // a plugin or filter asked: not yet a status

  const Config& config_;
  kj::AsyncIoContext& io_;
  frontend::Supervisor& supervisor_;
  chain::Chain& chain_;
  lifecycle::ShutdownRequest& stop_;
  ConnectionSet conns_;
  std::unique_ptr<listen::PrivateSocketDir> privateDir_;
  std::vector<kj::Own<Acceptor>> acceptors_;
  std::unique_ptr<lifecycle::CaptiveCommand> captive_;
  std::optional<std::string> userSocket_;
  std::thread single_;
};

int serve(const Config& config, kj::AsyncIoContext& io, frontend::Supervisor& supervisor, chain::Chain& chain,
          lifecycle::ShutdownRequest& stop, const std::function<bool()>& ready) {
  Server server(config, io, supervisor, chain, stop);
  return server.run(ready);
}

}  // namespace nbdcage
