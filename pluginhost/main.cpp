// nbdcage-pluginhost: loads one plugin, configures it, enters its sandbox,
// then serves the frontend on fd 3 until the frontend goes away.
//
//   nbdcage-pluginhost [--verbose] [--readonly] [--threads N] [--no-sandbox]
//                      [--allow-network] [--allow-exec] [--allow-rw PATH]...
//                      [--allow-ro PATH]... [--identity UID:GID]
//                      [--max-processes N] [--max-memory BYTES] [--max-files N]
//                      PLUGIN.so [KEY=VALUE | VALUE]...
//
// Exit status: 0 after an orderly end, 1 when the plugin cannot be loaded or
// configured (the reason is already on stderr).
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "pluginhost/abi-context.h"
#include "pluginhost/host-server.h"
#include "pluginhost/plugin.h"
#include "pluginhost/sandbox.h"

namespace {

struct Args {
  enum class Mode { kServe, kDumpPlugin, kPluginVersion, kPluginHelp } mode = Mode::kServe;
  bool verbose = false;
  bool swap = false;  // lock all memory (the export is this machine's swap)
  unsigned passedFds = 0;  // KEY=-FD descriptors at 1000, 1001, ...
  nbdcage::host::SandboxPolicy sandbox;
  nbdcage::host::HostOptions host;
  std::string plugin;
  std::vector<char*> params;  // pointers into argv
  std::vector<std::string> debugFlags;  // NAME.FLAG=N, checked by the frontend
};

[[noreturn]] void usage(const char* why) {
  fprintf(stderr, "nbdcage-pluginhost: %s\n(this program is started by nbdcage; it is not run by hand)\n", why);
  exit(1);
}

Args parseArgs(int argc, char** argv) {
  Args a;
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; ++i) {
    std::string opt = argv[i];
    if (opt == "--verbose") a.verbose = true;
    else if (opt == "--swap") a.swap = true;
    else if (opt == "--stdio-safe") nbdcage::host::setStdioSafe(true);
    else if (opt == "--passed-fds" && i + 1 < argc) a.passedFds = static_cast<unsigned>(std::min(16, atoi(argv[++i])));
    else if (opt == "--dump-plugin") a.mode = Args::Mode::kDumpPlugin;
    else if (opt == "--plugin-version") a.mode = Args::Mode::kPluginVersion;
    else if (opt == "--plugin-help") a.mode = Args::Mode::kPluginHelp;
    else if (opt == "--readonly") a.host.readonly = a.sandbox.readonly = true;
    else if (opt == "--no-sandbox") a.sandbox.enabled = false;
    else if (opt == "--allow-network") a.sandbox.network = true;
    else if (opt == "--allow-exec") a.sandbox.exec = true;
    else if ((opt == "--allow-rw" || opt == "--allow-ro") && i + 1 < argc)
      a.sandbox.paths.push_back({argv[++i], opt == "--allow-rw"});
    else if (opt == "--identity" && i + 1 < argc &&
             sscanf(argv[i + 1], "%u:%u", &a.sandbox.uid, &a.sandbox.gid) == 2)
      a.sandbox.switchIdentity = true, ++i;
    else if (opt == "--max-processes" && i + 1 < argc) a.sandbox.maxProcesses = strtoull(argv[++i], nullptr, 10);
    else if (opt == "--max-memory" && i + 1 < argc) a.sandbox.maxMemory = strtoull(argv[++i], nullptr, 10);
    else if (opt == "--max-files" && i + 1 < argc) a.sandbox.maxFiles = strtoull(argv[++i], nullptr, 10);
    else if (opt == "--debug-flag" && i + 1 < argc) a.debugFlags.push_back(argv[++i]);
    else if (opt == "--threads" && i + 1 < argc) a.host.threads = static_cast<unsigned>(std::max(1, atoi(argv[++i])));
    else usage(("unknown option " + opt).c_str());
  }
  if (i >= argc) usage("no plugin given");
  a.plugin = argv[i++];
  for (; i < argc; ++i) a.params.push_back(argv[i]);  // argv outlives everything
  return a;
}

// nbdkit's rule for a parameter key: a letter or '_' first, then letters,
// digits, '_', '-' or '.'.  Anything else is a value for the magic key.
bool isConfigKey(const std::string& s) {
  if (s.empty() || !(isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

// Splits each parameter in place, as nbdkit does with argv: the key and
// value handed to the plugin point into argv and live as long as the host.
// A bare parameter goes to the plugin's magic key; a plugin without one
// (the language plugins) takes a bare first parameter as its script=, as
// nbdkit has always done.
bool applyParams(nbdcage::host::Plugin& plugin, const std::vector<char*>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    char* p = params[i];
    char* eq = strchr(p, '=');
    if (eq != nullptr && isConfigKey(std::string(p, eq))) {
      *eq = '\0';
      if (!plugin.config(p, eq + 1)) return false;
    } else if (plugin.magicConfigKey() != nullptr) {
      if (!plugin.config(plugin.magicConfigKey(), p)) return false;
    } else if (i == 0) {
      if (!plugin.config("script", p)) return false;
    } else {
      nbdkit_error("parameter '%s' is not KEY=VALUE, and this plugin takes a bare value only first (as script=)", p);
      return false;
    }
  }
  return true;
}

bool configure(nbdcage::host::Plugin& plugin, const std::vector<char*>& params) {
  return applyParams(plugin, params) && plugin.configComplete() && plugin.getReady() && plugin.afterFork();
}

}  // namespace

int main(int argc, char** argv) {
  // The frontend already asked for PDEATHSIG at spawn; this closes the race
  // where it died before we got here.
  if (getppid() == 1) return 1;
  // The init of our own PID namespace: a reaper stays pid 1, we go on as 2.
  if (getpid() == 1) nbdcage::host::becomeReaper();
  // A write to a closed socket or pipe fails with EPIPE instead of killing
  // the host.  A handler, not SIG_IGN: a handler does not survive execve,
  // so the programs a plugin runs start with SIGPIPE's default action (a
  // shell loop writing into a closed pipe ends, as it should).
  struct sigaction pipe = {};
  pipe.sa_handler = [](int) {};
  sigemptyset(&pipe.sa_mask);
  pipe.sa_flags = SA_RESTART;
  sigaction(SIGPIPE, &pipe, nullptr);
  Args args = parseArgs(argc, argv);
  nbdcage::host::closeInheritedFds(args.passedFds);
  for (unsigned i = 0; i < args.passedFds; ++i) {
    struct stat st;
    int fd = nbdcage::host::kPassedFdBase + static_cast<int>(i);
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) args.sandbox.passedDirs.push_back(fd);
  }
  nbdcage::host::setVerbose(args.verbose);
  if (args.swap && mlockall(MCL_CURRENT | MCL_FUTURE) < 0) {
    fprintf(stderr, "nbdcage-pluginhost: --swap: cannot lock the plugin host in memory: %s (raise RLIMIT_MEMLOCK, "
                    "ulimit -l, or run nbdcage as root)\n", strerror(errno));
    return 1;
  }
  // Before the plugin is loaded: its constructors, load, config and any
  // thread it starts run confined too, and so do the probes.
  if (args.sandbox.enabled) nbdcage::host::enterSandbox(args.sandbox, args.plugin, args.verbose);

  std::unique_ptr<nbdcage::host::Plugin> plugin;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] { plugin = std::make_unique<nbdcage::host::Plugin>(args.plugin, args.debugFlags); })) {
    fprintf(stderr, "nbdcage: %s: %s\n", args.plugin.c_str(), e->getDescription().cStr());
    return 1;
  }
  if (args.mode == Args::Mode::kPluginHelp) {
    plugin->printHelp(args.plugin);  // as nbdkit: unconfigured
    return 0;
  }
  if (args.mode != Args::Mode::kServe) {
    // As nbdkit: parameters are applied (config), but not config_complete.
    if (!applyParams(*plugin, args.params)) return 1;
    if (args.mode == Args::Mode::kDumpPlugin)
      plugin->dump(args.plugin);
    else
      printf("%s %s\n", plugin->name(), plugin->version());
    fflush(stdout);
    return 0;
  }
  if (!configure(*plugin, args.params)) return 1;
  // Configured: stdin was the user's for that only (a script on stdin, a
  // password prompt); from now on it is nothing.
  nbdcage::host::setStdioSafe(false);
  if (int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC); devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    close(devnull);
  }

  {
    auto io = kj::setupAsyncIo();
    auto stream = io.lowLevelProvider->wrapUnixSocketFd(3, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    capnp::TwoPartyVatNetwork network(*stream, 3, capnp::rpc::twoparty::Side::SERVER);
    auto server = capnp::makeRpcServer(network, kj::heap<nbdcage::host::HostServer>(*plugin, args.host, io.unixEventPort));
    network.onDisconnect().wait(io.waitScope);
  }
  plugin->cleanup();
  plugin.reset();
  return 0;
}
