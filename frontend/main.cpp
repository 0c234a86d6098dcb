// nbdcage: wiring only.  Config -> filters -> supervisor (plugin host) -> chain -> serve -> exit.
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "filters/registry.h"
#include "frontend/chain/chain.h"
#include "frontend/cli.h"
#include "frontend/host/supervisor.h"
#include "frontend/lifecycle/daemon.h"
#include "frontend/lifecycle/exit-with-parent.h"
#include "frontend/lifecycle/log.h"
#include "frontend/lifecycle/shutdown-request.h"
#include "frontend/nbd/trace.h"
#include "frontend/server.h"
#include "nbdcage-config.h"

int main(int argc, char** argv) {
  auto cli = nbdcage::parseCommandLine(argc, argv);
  if (cli.action == nbdcage::CliResult::Action::kExit) return cli.exitStatus;
  const nbdcage::Config& config = cli.config;
  nbdcage::frontend::SandboxPolicy sandbox;
  try {
    sandbox = nbdcage::frontend::makeSandboxPolicy(config);
  } catch (const std::runtime_error& e) {
    fprintf(stderr, "nbdcage: %s\n", e.what());
    return 1;
  }
  if (cli.action == nbdcage::CliResult::Action::kDumpSandbox) {
    fputs(sandbox.describe().c_str(), stdout);
    return 0;
  }
  if (!config.sandbox) fprintf(stderr, "nbdcage: warning: --no-sandbox: the plugin runs unconfined (debugging only)\n");
  if (cli.action == nbdcage::CliResult::Action::kProbe) {
    // --version: "nbdcage V" (printed already), each filter, then the plugin,
    // as nbdkit lists them.  Filters are built in: they have our version.
    using Probe = nbdcage::CliResult::Probe;
    if (cli.probe == Probe::kVersion)
      for (const auto& f : config.filters) printf("%s %s\n", f.name.c_str(), NBDCAGE_VERSION);
    fflush(stdout);
    auto what = cli.probe == Probe::kDump   ? nbdcage::frontend::Probe::kDump
                : cli.probe == Probe::kHelp ? nbdcage::frontend::Probe::kHelp
                                            : nbdcage::frontend::Probe::kVersion;
    return nbdcage::frontend::probePlugin(config, sandbox, what);
  }

  // Filters check their parameters now: a bad one is a startup error.
  std::vector<std::unique_ptr<nbdcage::chain::Filter>> filters;
  try {
    for (const auto& f : config.filters) filters.push_back(nbdcage::filters::make(f.name, f.params));
    int reopening = 0;
    for (const auto& f : filters) reopening += f->reopens();
    if (reopening > 1) throw std::runtime_error("--filter=retry can be given once");
  } catch (const std::runtime_error& e) {
    fprintf(stderr, "nbdcage: %s\n", e.what());
    return 1;
  }

  if (config.swap) {
    // Serving this machine's swap: a page of ours swapped out could only
    // come back through ourselves.  The limit is raised where we may (as
    // root), for the plugin host, which inherits it without the privilege.
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY}, now;
    setrlimit(RLIMIT_MEMLOCK, &unlimited);
    if (getrlimit(RLIMIT_MEMLOCK, &now) == 0 && now.rlim_cur != RLIM_INFINITY) {
      // The host has no privilege to exceed it, and it maps more than that.
      fprintf(stderr, "nbdcage: --swap: the plugin host cannot be locked in memory: RLIMIT_MEMLOCK is %llu KiB and "
                      "nbdcage may not raise it; raise it first (ulimit -l unlimited, systemd's LimitMEMLOCK=infinity)\n",
              static_cast<unsigned long long>(now.rlim_cur / 1024));
      return 1;
    }
    if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0) {
      fprintf(stderr, "nbdcage: --swap: cannot lock nbdcage in memory: %s (raise RLIMIT_MEMLOCK, ulimit -l, or run "
                      "as root)\n", strerror(errno));
      return 1;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  umask(022);
  // Nothing of the same user (a plugin host that escaped its namespace
  // included) may ptrace us or read our memory, where clients' data is.
  // (Not in AddressSanitizer builds, whose leak checker must.)
#if !defined(__SANITIZE_ADDRESS__)
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
  // Blocked in this thread before any other exists; the event loop takes them.
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP}) kj::UnixEventPort::captureSignal(sig);
  if (config.exitWithParent && !nbdcage::lifecycle::armExitWithParent()) return 0;

  // Fork first (no threads yet); the parent waits for the verdict.
  std::optional<nbdcage::lifecycle::Daemon> daemon;
  if (config.daemonize()) daemon = nbdcage::lifecycle::Daemon::start();

  nbdcage::lifecycle::LogTarget logTo;
  logTo.name = config.name;
  nbdcage::lifecycle::parseLogTo(config.logTo(), logTo);  // checked by the CLI
  if (!daemon && !nbdcage::lifecycle::redirectLog(logTo, config.verbose)) return 1;

  nbdcage::nbd::gTrace = config.verbose;
  if (config.verbose && config.debugEnviron)
    for (char** e = environ; *e != nullptr; ++e) fprintf(stderr, "nbdcage: debug: environ: %s\n", *e);

  auto io = kj::setupAsyncIo();
  nbdcage::frontend::Supervisor supervisor(config, sandbox, io);
  if (int status = supervisor.start(); status != 0) {
    if (daemon) daemon->endedEarly(status);
    if (supervisor.interruptedBy() != 0) nbdcage::lifecycle::dieOfSignal(supervisor.interruptedBy());
    return status;
  }
  nbdcage::lifecycle::ShutdownRequest stop;
  nbdcage::chain::Chain chain(std::move(filters), supervisor);
  if (chain.exitBeforeServing()) {  // what a filter waits for has already happened
    supervisor.stop().wait(io.waitScope);
    if (daemon) daemon->endedEarly(0);
    return 0;
  }
  auto ready = [&]() {
    if (config.pidfile && !nbdcage::lifecycle::writePidfile(*config.pidfile, getpid())) return false;
    if (daemon) {
      // Startup errors went to the caller.  (The file was checked at startup.)
      if (!nbdcage::lifecycle::redirectLog(logTo, config.verbose)) return false;
      daemon->ready();
    }
    return true;
  };
  int status = nbdcage::serve(config, io, supervisor, chain, stop, ready);
  if (daemon) daemon->endedEarly(status);  // only reaches the parent if ready() never ran
  return status;
}
