// nbdcage: wiring only.  Config -> supervisor (plugin host) -> serve -> exit.
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>

#include "frontend/cli.h"
#include "frontend/host/supervisor.h"
#include "frontend/lifecycle/exit-with-parent.h"
#include "frontend/server.h"

int main(int argc, char** argv) {
  auto cli = nbdcage::parseCommandLine(argc, argv);
  if (cli.action == nbdcage::CliResult::Action::kExit) return cli.exitStatus;
  const nbdcage::Config& config = cli.config;

  signal(SIGPIPE, SIG_IGN);
  umask(022);
  // Blocked in this thread before any other exists; the event loop takes them.
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP}) kj::UnixEventPort::captureSignal(sig);
  if (config.exitWithParent && !nbdcage::lifecycle::armExitWithParent()) return 0;

  auto io = kj::setupAsyncIo();
  nbdcage::frontend::Supervisor supervisor(config, io);
  if (int status = supervisor.start(); status != 0) return status;
  return nbdcage::serve(config, io, supervisor);
}
