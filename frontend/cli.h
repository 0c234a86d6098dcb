// The command line, parsed once into an immutable Config.  nbdkit's syntax:
//
//   nbdcage [OPTIONS] PLUGIN [KEY=VALUE | VALUE]... [OPTIONS]
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nbdcage {

// One --filter, with the KEY=VALUE parameters it takes.
struct FilterConfig {
  std::string name;
  std::vector<std::string> params;
};

struct Config {
  std::string plugin;               // as the user wrote it
  std::string pluginPath;           // the resolved .so
  std::string hostPath;             // the nbdcage-pluginhost executable
  std::vector<std::string> params;  // passed to the host verbatim (what no filter takes)
  std::vector<FilterConfig> filters;  // in command-line order: the first is nearest the client

  std::optional<std::string> unixSocket;  // -U PATH; "-" means a private one
  std::optional<std::string> port;        // -p (service name or number)
  std::optional<std::string> ipaddr;      // -i
  int ipFamily = 0;                       // -4: 4, -6: 6, else 0 (both)
  bool keepalive = false;                 // --keepalive: SO_KEEPALIVE on TCP clients
  bool printUri = false;                  // --print-uri
  bool swap = false;                      // --swap: mlockall in both processes
  std::string name = "nbdcage";           // --name: in messages and the system log
  bool vsock = false;                     // --vsock (port from -p)
  bool single = false;                    // -s
  bool foreground = false;                // -f
  bool readonly = false;                  // -r
  bool verbose = false;                   // -v
  bool exitWithParent = false;
  bool sandbox = true;                    // --no-sandbox clears it
  std::vector<std::string> allowPaths;    // --allow-path=PATH[:ro], as given
  bool allowNetwork = false;              // --allow-network
  bool allowExec = false;                 // --allow-exec
  std::optional<std::string> sandboxUser; // --sandbox-user=USER[:GROUP], as given (root only)
  uint64_t sandboxProcesses = 4096;       // --sandbox-processes: tasks (threads too) per host; 0: no limit
  uint64_t sandboxMemory = 0;             // --sandbox-memory: bytes of address space per host; 0: no limit
  uint64_t sandboxFiles = 0;              // --sandbox-files: open files per host; 0: as inherited
  std::string exportName;                 // -e, used for $uri and $exportname
  unsigned threads = 16;                  // -t
  unsigned requestTimeout = 60;           // --request-timeout, seconds; 0: none
  unsigned handshakeTimeout = 10;         // --timeout, seconds; 0: none
  unsigned maxConnections = 1024;         // --max-connections: clients at once; 0: no cap
  std::string onPluginCrash;              // restart|fail|exit; empty: by the plugin (onCrash())
  bool isolateConnections = false;        // --isolate=connection: a plugin host per client
  std::optional<std::string> run;         // --run CMD
  bool socketActivation = false;          // LISTEN_PID/LISTEN_FDS name us
  std::optional<std::string> pidfile;     // -P, absolute
  std::vector<std::string> debugFlags;    // -D NAME.FLAG=N for the plugin, checked
  bool debugEnviron = false;              // -D nbdkit.environ=1: with -v, the environment is printed
  // KEY=-FD parameters (nbdkit_read_password's -FD): our descriptor FD, to
  // be the first host's kPassedFdBase + i, which the parameter now names.
  std::vector<int> passedFds;
  static constexpr int kPassedFdBase = 1000;  // the plugin host's kPassedFdBase
  std::optional<std::string> log;         // --log: stderr|syslog|null|file:ABSOLUTE-PATH; unset: default

  // Without -f, --run, -s, --exit-with-parent or socket activation,
  // nbdcage goes into the background once it serves.
  bool daemonize() const { return !foreground && !run && !single && !exitWithParent && !socketActivation; }
  // --on-plugin-crash, or its default: "fail" for plugins that keep the
  // export's data in their own memory (a new host would serve an empty
  // disk under the same name), else "restart".
  // Also "fail" for a plugin configured from standard input (sh -,
  // password=-), which a new host could not read again.
  std::string onCrash() const;
  bool configuredFromStdin() const;  // a parameter is "-" or KEY=-
  // --log, or its default: syslog for a daemon, else stderr.
  std::string logTo() const { return log.value_or(daemonize() ? "syslog" : "stderr"); }
};

// What parseCommandLine decided.  kExit carries the status to exit with;
// text (help, version, or a one-line error) is already printed.  kProbe:
// the plugin host must print the plugin's facts (--dump-plugin, or
// --version with a plugin, or PLUGIN --help) and nbdcage exits with its
// status.
// kDumpSandbox: --dump-config with a plugin: the build configuration is
// printed; the sandbox policy for that command line is still to print.
struct CliResult {
  enum class Action { kServe, kExit, kProbe, kDumpSandbox } action;
  enum class Probe { kVersion, kDump, kHelp } probe = Probe::kVersion;  // kProbe: what to print
  int exitStatus = 0;
  Config config;
};

CliResult parseCommandLine(int argc, const char* const* argv);

// "nbdkit-NAME-plugin.so" or "nbdcage-NAME-plugin.so" -> NAME (else the
// file name).
std::string pluginShortName(const std::string& pluginPath);

// Where this executable lives (for finding the host and plugins uninstalled).
std::string selfDirectory();

}  // namespace nbdcage
