// nbdcage: wiring only.  Config -> supervisor (plugin host) -> serve -> exit.
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <signal.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cstdio>
#include <optional>

#include "frontend/cli.h"
#include "frontend/host/supervisor.h"
#include "frontend/lifecycle/daemon.h"
#include "frontend/lifecycle/exit-with-parent.h"
#include "frontend/lifecycle/log.h"
#include "frontend/server.h"

int main(int argc, char** argv) {
  auto cli = nbdcage::parseCommandLine(argc, argv);
  if (cli.action == nbdcage::CliResult::Action::kExit) return cli.exitStatus;
  const nbdcage::Config& config = cli.config;
  if (cli.action == nbdcage::CliResult::Action::kProbe) return nbdcage::frontend::probePlugin(config, cli.dumpPlugin);

  signal(SIGPIPE, SIG_IGN);
  umask(022);
  // Blocked in this thread before any other exists; the event loop takes them.
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP}) kj::UnixEventPort::captureSignal(sig);
  if (config.exitWithParent && !nbdcage::lifecycle::armExitWithParent()) return 0;

  // Fork first (no threads yet); the parent waits for the verdict.
  std::optional<nbdcage::lifecycle::Daemon> daemon;
  if (config.daemonize()) daemon = nbdcage::lifecycle::Daemon::start();

  nbdcage::lifecycle::LogTo logTo = nbdcage::lifecycle::LogTo::kStderr;
  nbdcage::lifecycle::parseLogTo(config.logTo(), logTo);  // checked by the CLI
  if (!daemon) nbdcage::lifecycle::redirectLog(logTo, config.verbose);

  auto io = kj::setupAsyncIo();
  nbdcage::frontend::Supervisor supervisor(config, io);
  if (int status = supervisor.start(); status != 0) {
    if (daemon) daemon->failed(status);
    return status;
  }
  auto ready = [&]() {
    if (config.pidfile && !nbdcage::lifecycle::writePidfile(*config.pidfile, getpid())) return false;
    if (daemon) {
      nbdcage::lifecycle::redirectLog(logTo, config.verbose);  // startup errors went to the caller
      daemon->ready();
    }
    return true;
  };
  int status = nbdcage::serve(config, io, supervisor, ready);
  if (daemon) daemon->failed(status);  // only reaches the parent if ready() never ran
  return status;
}
