// Decides which plugin host serves what, and what happens when one dies:
// the restart policy.  It starts hosts (HostProcess: the process, its
// pidfd, its stderr), talks to them through HostClient (RPC, answers
// checked) and puts a deadline on every call.
//
//   loop thread (main)                          connection threads
//   ------------------                          ------------------
//   spawn host (HostProcess, sandboxed)         open(export) ---Inbox---------+
//   pidfd on the event loop -> reap, policy     listExports(), defaultExport(),|
//                                               a handle's close ---Inbox------+
//   HostClient: hello, open, listExports, close <------------------------------+
//   deadline passed / socket shut -> kill       waits for its Answer (or the
//   liveness ping unanswered -> kill            client hanging up) in poll()
//
// By default one host is shared by all connections (a memory disk must be
// the same disk for everyone); --isolate=connection gives each open a host
// of its own, retired at its close.  When a host dies, its handles break
// (RemoteHandle sees the pidfd) and --on-plugin-crash says what follows:
// a fresh host for the next open(), refusal, or exit.  A new host is
// checked (hello, protocol version) before it is asked anything else, and
// restarts are spaced on the loop's timer, which never sleeps in place.
#pragma once

#include <kj/async-io.h>
#include <kj/async-unix.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/client.h"
#include "frontend/cli.h"
#include "frontend/host/inbox.h"
#include "frontend/host/remote-handle.h"
#include "frontend/host/sandbox-policy.h"
#include "frontend/host/validate.h"

namespace nbdcage::frontend {

class Supervisor {
 public:
  Supervisor(const Config& config, const SandboxPolicy& sandbox, kj::AsyncIoContext& io);
  ~Supervisor();

  // Loop thread, before serving: starts the first host and checks that it
  // configured its plugin.  Returns 0, or the status nbdcage must exit with
  // (the host already printed why).
  int start();
  // The stopping signal that ended start() (its status was 128 + it), or 0.
  int interruptedBy() const { return interruptedBy_; }

  // Any thread but the loop thread: the call is posted to the loop, and
  // the caller waits for its answer only (open: or for the client, whose
  // descriptor is `client.fd`, to hang up).  Throw HostError.
  kj::Own<RemoteHandle> open(const std::string& exportName, bool readonly, const chain::Client& client);
  std::vector<std::pair<std::string, std::string>> listExports(bool readonly);
  std::string defaultExport(bool readonly);

  // Loop thread: tells the host an orderly shutdown has begun (its
  // plugin's sleeps end early).  Returns at once.
  void announceStopping();

  // Loop thread: ends every host (its control socket closes; it exits)
  // and reaps it.  Resolves once all are gone: those that do not exit
  // within 5 s are killed.
  kj::Promise<void> stop();

  // Loop thread, or any thread just before exiting in a hurry: SIGKILL to
  // every host and everything it started (their requests fail with EIO).
  void killHostNow();

  // Loop thread: resolves when a plugin calls nbdkit_shutdown().
  kj::Promise<void> pluginAskedToStop() { return stopRequested_.addBranch(); }
  // Loop thread: resolves with the status to exit with when the host dies
  // and --on-plugin-crash says exit.
  kj::Promise<int> crashExit() { return crashExit_.addBranch(); }

 private:
  struct Host;
  // How long a host may take to exit once told to (cleanup, unload).
  static constexpr kj::Duration kExitGrace = 5 * kj::SECONDS;
  // The liveness check: how often, and how long an answer may take.
  static constexpr kj::Duration kPingEvery = 2 * kj::SECONDS;
  static constexpr kj::Duration kPingWithin = 5 * kj::SECONDS;
  // Failures of calls nobody waits for (closes) are theirs to ignore.
  struct Quiet final : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {}
  };

  kj::Promise<Host*> sharedHost();  // loop thread: the running host, or a new one after the back-off
  kj::Promise<Host*> sharedHostNow();  // the same, but throws HostError
  Host& dedicatedHost(uint64_t handleId);  // loop thread: --isolate=connection
  kj::Promise<Host*> checked(Host& host);  // after its hello, within the deadline
  kj::Promise<Host*> checkHello(Host& host);
  std::chrono::milliseconds backOff() const;  // between starts of the shared host
  kj::Promise<void> untilDead(uint64_t generation);
  kj::Promise<void> untilReaped(uint64_t generation);
  kj::Promise<void> untilAllExited(kj::TimePoint deadline);
  Host* findHost(uint64_t generation);
  void retire(Host& host);  // closes its socket; the watch reaps it
  void watchForShutdown(Host& host);
  template <typename T, typename Call>
  kj::Promise<T> callHost(Call call, uint64_t dedicatedId = 0);
  template <typename T, typename Call>
  T ask(Call call);  // any other thread
  // `withStdin`: the host configures its plugin with our stdin (the first
  // one only, and never with -s: see nbdkit_stdio_safe).
  kj::Own<Host> spawnHost(bool withStdin = false);
  void watchHost(Host& host);
  void watchLiveness(Host& host);
  kj::Promise<void> ping(uint64_t generation);
  // Tells a waiting connection that its close is over when it goes (run,
  // failed, given up on, or never run at all).
  class Done {
   public:
    Done() = default;
    explicit Done(std::shared_ptr<Answer<bool>> answer) : teller_(std::make_shared<Teller>(std::move(answer))) {}

   private:
    struct Teller {
      explicit Teller(std::shared_ptr<Answer<bool>> a) : answer(std::move(a)) {}
      ~Teller() { answer->give(true); }
      std::shared_ptr<Answer<bool>> answer;
    };
    std::shared_ptr<Teller> teller_;  // the last copy to go tells
  };
  void closeHandle(uint64_t id, Done done = {});  // loop thread
  int reap(Host& host, bool expected);  // waits for it; its wait status
  void reportCrashLoop(Host& host);

  const Config& config_;
  const SandboxPolicy& sandbox_;
  kj::AsyncIoContext& io_;
  bool toldNoNamespaces_ = false;
  Inbox inbox_;  // what connection threads ask of the loop
  int interruptedBy_ = 0;
  std::string startDir_;  // where hosts run, whatever the daemon's cwd
  kj::Own<Host> host_;
  std::map<uint64_t, kj::Own<Host>> dedicated_;  // --isolate=connection: handle id -> its own host
  uint64_t generation_ = 0;
  uint64_t nextHandleId_ = 1;
  std::map<uint64_t, uint64_t> handles_;  // open handle id -> its host's generation
  std::chrono::steady_clock::time_point lastSpawn_{};
  unsigned youngDeaths_ = 0;  // shared hosts in a row that died before serving anyone
  bool toldBackOff_ = false;
  kj::Own<kj::PromiseFulfiller<void>> stopFulfiller_;
  kj::ForkedPromise<void> stopRequested_ = nullptr;
  kj::Own<kj::PromiseFulfiller<int>> crashFulfiller_;
  kj::ForkedPromise<int> crashExit_ = nullptr;
  std::string lost_;  // --on-plugin-crash=fail after a crash: why the export is gone
  std::deque<std::chrono::steady_clock::time_point> recentDeaths_;  // unexpected ones, last 10 s
  bool toldCrashLoop_ = false;
  Quiet quiet_;
  // Calls under way: opens and lists (their answers report failures) and
  // closes.  Dropped before the hosts they call.
  kj::Own<kj::TaskSet> calls_ = kj::heap<kj::TaskSet>(quiet_);
};

// Runs a plugin host that loads the plugin, prints its facts on our
// stdout and exits: kDump (--dump-plugin) and kVersion ("NAME VERSION")
// after applying the parameters, kHelp (PLUGIN --help: its description and
// parameters) without.  Returns the status for nbdcage to exit with.
enum class Probe { kVersion, kDump, kHelp };
int probePlugin(const Config& config, const SandboxPolicy& sandbox, Probe what);

}  // namespace nbdcage::frontend
