#include "frontend/cli.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>

#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "filters/registry.h"
#include "frontend/listen/socket-activation.h"
#include "nbdcage-config.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace nbdcage {

namespace {

const char* const kUsage =
    "Usage: nbdcage [OPTIONS] PLUGIN [KEY=VALUE | VALUE]... [--run CMD]\n"
    "Serve a disk over NBD from a plugin that runs in its own sandboxed process.\n";

po::options_description describeOptions() {
  po::options_description d("Options");
  d.add_options()
      ("help,h", "print this help and exit")
      ("version,V", "print the version and exit")
      ("dump-config", "print the build configuration (KEY=VALUE lines) and exit")
      ("dump-plugin", "print the plugin's facts (KEY=VALUE lines) and exit")
      ("unix,U", po::value<std::string>()->value_name("SOCKET"),
       "listen on a Unix domain socket; '-' makes a private one")
      ("port,p", po::value<std::string>()->value_name("PORT"), "listen on TCP port PORT (default 10809)")
      ("ipaddr,i", po::value<std::string>()->value_name("ADDR"), "listen on this address only")
      ("vsock", "listen on AF_VSOCK (for virtual machines), port from -p")
      ("single,s", "serve one connection on stdin/stdout, then exit")
      ("stdin", "the same as --single")
      ("foreground,f", "stay in the foreground")
      ("pidfile,P", po::value<std::string>()->value_name("PIDFILE"), "write the server's pid here once it serves")
      ("readonly,r", "serve the export read-only")
      ("exportname,e", po::value<std::string>()->value_name("NAME"), "the export name used in $uri with --run")
      ("threads,t", po::value<unsigned>()->value_name("N"), "worker threads per connection (default 16)")
      ("verbose,v", "print debug messages (always on stderr)")
      ("log", po::value<std::string>()->value_name("stderr|syslog|null"),
       "where messages go (default: stderr, or syslog once in the background)")
      ("debug,D", po::value<std::vector<std::string>>()->composing()->value_name("NAME.FLAG=N"),
       "set the plugin's debug flag NAME_debug_FLAG to N")
      ("filter", po::value<std::vector<std::string>>()->composing()->value_name("FILTER"),
       "add FILTER to the chain (repeatable; the first is nearest the client)")
      ("timeout", po::value<unsigned>()->value_name("SECONDS"),
       "drop a client that has not finished the handshake after waiting SECONDS for it (default 10; 0: never)")
      ("max-connections", po::value<unsigned>()->value_name("N"),
       "serve at most N clients at once; more are closed before the greeting (default 1024; 0: no cap)")
      ("request-timeout", po::value<unsigned>()->value_name("SECONDS"),
       "fail a request the plugin has not answered in SECONDS with EIO and replace its host (default 60; 0: never)")
      ("isolate", po::value<std::string>()->value_name("connection|none"),
       "connection: each client gets a plugin host of its own, so no plugin ever sees another client's data "
       "(default none: one host serves every client)")
      ("on-plugin-crash", po::value<std::string>()->value_name("restart|fail|exit"),
       "when the plugin host dies: start a new one, refuse clients, or exit (default: fail for plugins that keep "
       "their data in memory, else restart)")
      ("exit-with-parent", "exit when the parent process exits")
      ("run", po::value<std::string>()->value_name("CMD"), "run CMD with the server, then exit with its status")
      ("allow-path", po::value<std::vector<std::string>>()->composing()->value_name("PATH[:ro]"),
       "let the plugin reach PATH (read-write, or read-only with :ro) in its sandbox (repeatable)")
      ("allow-network", "let the plugin use the network (curl, ssh, nbd plugins and scripts that fetch)")
      ("allow-exec", "let a plugin that is not a shell or language plugin run programs")
      ("sandbox-user", po::value<std::string>()->value_name("USER[:GROUP]"),
       "as root: the identity the plugin host runs as (default nobody:nogroup; root keeps uid 0, still without "
       "capabilities)")
      ("sandbox-processes", po::value<std::string>()->value_name("N"),
       "processes and threads each plugin host may have (default 4096; 0: no limit)")
      ("sandbox-memory", po::value<std::string>()->value_name("SIZE"),
       "address space each plugin host may map, e.g. 2G (default: no limit)")
      ("sandbox-files", po::value<std::string>()->value_name("N"),
       "files each plugin host may have open (default: as inherited)")
      ("no-sandbox", "run the plugin host without its sandbox (debugging only)");
  return d;
}

[[noreturn]] void fail(const std::string& message) {
  throw std::runtime_error(message);
}

// Where an installed directory is relative to this executable: the same
// place as configured, unless the tree was installed elsewhere as a whole
// (DESTDIR, a moved prefix), in which case it is found beside us.
std::string installedPath(const std::string& configured) {
  fs::path rel = fs::path(configured).lexically_relative(NBDCAGE_BINDIR);
  return (fs::path(selfDirectory()) / rel).lexically_normal().string();
}

std::vector<std::string> extraPluginDirs() {
  std::vector<std::string> dirs;
  const char* env = getenv("NBDCAGE_PLUGIN_PATH");
  std::istringstream list(env ? env : "");
  for (std::string dir; std::getline(list, dir, ':');)
    if (!dir.empty()) dirs.push_back(dir);
  return dirs;
}

// The search path as --dump-config and errors give it.
std::string pluginPathText() {
  std::string text;
  for (const auto& dir : extraPluginDirs()) text += dir + ":";
  return text + NBDCAGE_PLUGINDIR + ":" + NBDKIT_PLUGINDIR;
}

// Where a plugin NAME is looked for, in order: $NBDCAGE_PLUGIN_PATH's
// directories (either kind), nbdcage's own plugins, then nbdkit's
// installed ones (loaded in the sandboxed host like any other).
std::vector<std::pair<std::string, std::string>> pluginSearch(const std::string& name) {
  std::string ours = "nbdcage-" + name + "-plugin.so", theirs = "nbdkit-" + name + "-plugin.so";
  std::vector<std::pair<std::string, std::string>> at;
  for (const auto& dir : extraPluginDirs()) {
    at.emplace_back(dir, ours);
    at.emplace_back(dir, theirs);
  }
  for (const auto& dir : {selfDirectory() + "/../plugins", installedPath(NBDCAGE_PLUGINDIR),
                          std::string(NBDCAGE_PLUGINDIR)})
    at.emplace_back(dir, ours);
  at.emplace_back(NBDKIT_PLUGINDIR, theirs);
  at.emplace_back(NBDKIT_PLUGINDIR, "nbdkit-" + name + "-plugin");  // a script (its #! names its language)
  return at;
}

// A plugin given as a script whose first line is "#!.../nbdkit LANG" (or
// nbdcage, or through env): LANG, which runs it.  Nothing for anything
// else (a .so).
std::optional<std::string> shebangLanguage(const std::string& path) {
  char head[256] = {};
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return std::nullopt;
  size_t n = fread(head, 1, sizeof head - 1, f);
  fclose(f);
  std::string line(head, n);
  if (!line.starts_with("#!")) return std::nullopt;
  size_t end = line.find('\n');
  line = line.substr(2, end == std::string::npos ? std::string::npos : end - 2);
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  size_t i = 0;
  if (i < words.size() && fs::path(words[i]).filename() == "env") ++i;
  if (i < words.size() && words[i] == "-S") ++i;
  std::string program = i < words.size() ? fs::path(words[i]).filename().string() : "";
  if (program != "nbdkit" && program != "nbdcage")
    fail("plugin '" + path + "' is a script for '" + (program.empty() ? "?" : program) +
         "', not for nbdkit: its first line must be '#!/usr/sbin/nbdkit LANGUAGE'");
  if (i + 1 >= words.size()) fail("plugin '" + path + "': its '#!' line names no language plugin");
  return words[i + 1];
}

std::string findPlugin(const std::string& name) {
  if (name.find('/') != std::string::npos || name.ends_with(".so")) {
    std::error_code ec;
    if (!fs::is_regular_file(name, ec))
      fail("plugin '" + name + "' not found: no such file; give an installed plugin name or the path of a .so");
    return fs::absolute(name).string();
  }
  for (char c : name)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
      fail("'" + name + "' is not a plugin name; give an installed plugin name or the path of a .so");
  for (const auto& [dir, file] : pluginSearch(name)) {
    std::error_code ec;
    if (fs::is_regular_file(dir + "/" + file, ec)) return fs::canonical(dir + "/" + file).string();
  }
  fail("unknown plugin '" + name + "': there is no nbdcage-" + name + "-plugin.so or nbdkit-" + name +
       "-plugin.so in " + pluginPathText() + "; give an installed plugin name or the path of a .so");
}

std::string findHost() {
  std::string candidates[] = {selfDirectory() + "/../pluginhost/nbdcage-pluginhost",
                              installedPath(NBDCAGE_LIBEXECDIR) + "/nbdcage-pluginhost",
                              std::string(NBDCAGE_LIBEXECDIR) + "/nbdcage-pluginhost"};
  for (const auto& c : candidates)
    if (access(c.c_str(), X_OK) == 0) return fs::canonical(c).string();
  fail(std::string("cannot find nbdcage-pluginhost in ") + NBDCAGE_LIBEXECDIR + "; is nbdcage installed completely?");
}

// NAME.FLAG=N: NAME and FLAG are C identifiers (FLAG may hold dots, which
// become underscores in the symbol), N an integer.
bool isDebugFlag(const std::string& d) {
  auto dot = d.find('.'), eq = d.find('=');
  if (dot == 0 || dot == std::string::npos || eq == std::string::npos || eq < dot + 2 || eq + 1 == d.size())
    return false;
  for (size_t i = 0; i < eq; ++i)
    if (!isalnum(static_cast<unsigned char>(d[i])) && d[i] != '_' && d[i] != '.') return false;
  char* end;
  errno = 0;
  long v = strtol(d.c_str() + eq + 1, &end, 0);
  return errno == 0 && *end == '\0' && v >= INT_MIN && v <= INT_MAX;
}

// N, or with `sizes` also N followed by K, M, G or T (powers of 1024).
uint64_t parseLimit(const po::variables_map& vm, const std::string& name, bool sizes) {
  const std::string v = vm[name].as<std::string>();
  size_t digits = 0;
  while (digits < v.size() && isdigit(static_cast<unsigned char>(v[digits]))) ++digits;
  bool ok = digits > 0 && digits <= 19;  // 19 digits always fit 64 bits
  unsigned shift = 0;
  if (ok && digits < v.size()) {
    size_t unit = std::string("KMGT").find(static_cast<char>(toupper(static_cast<unsigned char>(v[digits]))));
    ok = sizes && digits + 1 == v.size() && unit != std::string::npos;
    shift = ok ? 10 * static_cast<unsigned>(unit + 1) : 0;
  }
  uint64_t n = ok ? std::stoull(v.substr(0, digits)) : 0;
  if (!ok || (shift != 0 && n > (UINT64_MAX >> shift)))
    fail("--" + name + " must be a number" + (sizes ? " (with K, M, G or T for sizes)" : "") + ", not '" + v + "'");
  return n << shift;
}

// The options' values into `c`, each checked on the way.
void readOptions(const po::variables_map& vm, Config& c) {
  if (vm.count("unix")) c.unixSocket = vm["unix"].as<std::string>();
  if (vm.count("port")) c.port = vm["port"].as<std::string>();
  if (vm.count("ipaddr")) c.ipaddr = vm["ipaddr"].as<std::string>();
  c.single = vm.count("single") || vm.count("stdin");
  c.vsock = vm.count("vsock") > 0;
  c.foreground = vm.count("foreground") > 0;
  c.readonly = vm.count("readonly") > 0;
  c.verbose = vm.count("verbose") > 0;
  c.exitWithParent = vm.count("exit-with-parent") > 0;
  c.sandbox = vm.count("no-sandbox") == 0;
  if (vm.count("allow-path")) c.allowPaths = vm["allow-path"].as<std::vector<std::string>>();
  c.allowNetwork = vm.count("allow-network") > 0;
  c.allowExec = vm.count("allow-exec") > 0;
  if (vm.count("sandbox-user")) {
    c.sandboxUser = vm["sandbox-user"].as<std::string>();
    if (c.sandboxUser->empty() || c.sandboxUser->front() == ':' || c.sandboxUser->back() == ':')
      fail("--sandbox-user must be USER or USER:GROUP, not '" + *c.sandboxUser + "'");
  }
  if (vm.count("sandbox-processes")) c.sandboxProcesses = parseLimit(vm, "sandbox-processes", false);
  if (vm.count("sandbox-memory")) c.sandboxMemory = parseLimit(vm, "sandbox-memory", true);
  if (vm.count("sandbox-files")) c.sandboxFiles = parseLimit(vm, "sandbox-files", false);
  if (vm.count("exportname")) c.exportName = vm["exportname"].as<std::string>();
  if (vm.count("threads")) {
    c.threads = vm["threads"].as<unsigned>();
    if (c.threads == 0 || c.threads > 1024) fail("-t: the number of threads must be between 1 and 1024");
  }
  if (vm.count("run")) c.run = vm["run"].as<std::string>();
  if (vm.count("request-timeout")) c.requestTimeout = vm["request-timeout"].as<unsigned>();
  if (vm.count("timeout")) c.handshakeTimeout = vm["timeout"].as<unsigned>();
  if (vm.count("max-connections")) c.maxConnections = vm["max-connections"].as<unsigned>();
  if (vm.count("isolate")) {
    std::string i = vm["isolate"].as<std::string>();
    if (i != "connection" && i != "none") fail("--isolate must be connection or none, not '" + i + "'");
    c.isolateConnections = i == "connection";
  }
  if (vm.count("on-plugin-crash")) {
    c.onPluginCrash = vm["on-plugin-crash"].as<std::string>();
    if (c.onPluginCrash != "restart" && c.onPluginCrash != "fail" && c.onPluginCrash != "exit")
      fail("--on-plugin-crash must be restart, fail or exit, not '" + c.onPluginCrash + "'");
  }
  if (vm.count("debug")) {
    for (const auto& d : vm["debug"].as<std::vector<std::string>>()) {
      if (!isDebugFlag(d)) fail("-D (Debug Flag) must have the format NAME.FLAG=N, not '" + d + "'");
      c.debugFlags.push_back(d);
    }
  }
  if (vm.count("log")) {
    c.log = vm["log"].as<std::string>();
    if (*c.log != "stderr" && *c.log != "syslog" && *c.log != "null")
      fail("--log must be stderr, syslog or null, not '" + *c.log + "'");
  }
  if (vm.count("pidfile")) c.pidfile = fs::absolute(vm["pidfile"].as<std::string>()).string();
}

// "exitlast, exitwhen, ...": the filters nbdcage has, for messages.
std::string filterList() {
  std::string list;
  for (const auto& n : filters::names()) list += (list.empty() ? "" : ", ") + n;
  return list;
}

// Each KEY=VALUE goes to the first filter (nearest the client) that takes
// KEY; the rest (and every bare VALUE) to the plugin.
void routeParams(const po::variables_map& vm, const std::vector<std::string>& args, Config& c) {
  if (vm.count("filter")) {
    for (const auto& name : vm["filter"].as<std::vector<std::string>>()) {
      if (!filters::exists(name))
        fail("unknown filter '" + name + "': nbdcage's filters are built in (" + filterList() + ")");
      c.filters.push_back({name, {}});
    }
  }
  for (const auto& a : args) {
    auto eq = a.find('=');
    FilterConfig* taker = nullptr;
    if (eq != std::string::npos && eq > 0)
      for (auto& f : c.filters)
        if (filters::takesKey(f.name, a.substr(0, eq))) {
          taker = &f;
          break;
        }
    (taker ? taker->params : c.params).push_back(a);
  }
}

void checkConflicts(const Config& c, const po::variables_map& vm) {
  if (c.socketActivation) {
    // The sockets come from systemd: anything that would make others is wrong.
    const std::pair<const char*, bool> illegal[] = {
        {"-i", c.ipaddr.has_value()}, {"-p", c.port.has_value()}, {"-U", c.unixSocket.has_value()},
        {"-s", c.single},             {"--run", c.run.has_value()}};
    for (const auto& [flag, set] : illegal)
      if (set) fail(std::string(flag) + " cannot be used with socket activation (LISTEN_FDS): systemd gives the sockets");
  }
  int listeners = (c.unixSocket ? 1 : 0) + (c.port || c.ipaddr ? 1 : 0) + (c.single ? 1 : 0);
  if (c.unixSocket && (c.port || c.ipaddr)) fail("-U cannot be used with -p or -i: choose a Unix socket or TCP");
  if (c.vsock && (c.unixSocket || c.ipaddr || c.single))
    fail("--vsock cannot be used with -U, -i or -s: it listens on AF_VSOCK, on the -p port");
  if (c.vsock && c.port &&
      (c.port->empty() || c.port->size() > 10 || c.port->find_first_not_of("0123456789") != std::string::npos ||
       std::stoull(*c.port) > 0xffffffffu))
    fail("--vsock: -p must be a port number (0 to 4294967295), not '" + *c.port + "'");
  if (c.single && c.run) fail("--run cannot be used with -s: the command needs a socket to connect to");
  if (c.single && c.socketActivation) fail("-s cannot be used with socket activation (LISTEN_FDS)");
  if (c.single && listeners > 1) fail("-s serves stdin/stdout: it cannot be used with -U, -p or -i");
  if (c.unixSocket && c.unixSocket->size() >= 108 && *c.unixSocket != "-")
    fail("-U: path too long: " + std::to_string(c.unixSocket->size()) + " bytes, the maximum is 107");
  if (c.exportName.size() > 4096) fail("-e: export name longer than 4096 bytes");
}

}  // namespace

namespace {

// Build facts as KEY=VALUE lines, as nbdkit's --dump-config does, for
// scripts that need to know where things are.
void dumpConfig() {
  std::string version = NBDCAGE_VERSION;
  auto dot = version.find('.');
  auto dot2 = version.find('.', dot + 1);
  std::string host;
  try {
    host = findHost();
  } catch (const std::runtime_error&) {
    host = std::string(NBDCAGE_LIBEXECDIR) + "/nbdcage-pluginhost";
  }
  std::cout << "binary=" << selfDirectory() << "/nbdcage\n"
            << "bindir=" << NBDCAGE_BINDIR << "\n"
            << "libexecdir=" << NBDCAGE_LIBEXECDIR << "\n"
            << "plugindir=" << NBDCAGE_PLUGINDIR << "\n"
            << "plugin_path=" << pluginPathText() << "\n"
            << "pluginhost=" << host << "\n"
            << "version=" << version << "\n"
            << "version_major=" << version.substr(0, dot) << "\n"
            << "version_minor=" << version.substr(dot + 1, dot2 - dot - 1) << "\n";
}

}  // namespace

std::string pluginShortName(const std::string& path) {
  std::string base = fs::path(path).filename().string();
  for (std::string prefix : {"nbdkit-", "nbdcage-"})
    if (base.starts_with(prefix) && base.ends_with("-plugin.so"))
      return base.substr(prefix.size(), base.size() - prefix.size() - 10);
  return base;
}

std::string Config::onCrash() const {
  if (!onPluginCrash.empty()) return onPluginCrash;
  // Their disks live in the host's memory (or its private /tmp).
  static const char* const kInMemory[] = {"memory", "data", "tmpdisk"};
  for (const char* name : kInMemory)
    if (pluginShortName(pluginPath) == name) return "fail";
  return "restart";
}

std::string selfDirectory() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

CliResult parseCommandLine(int argc, const char* const* argv) {
  CliResult result{CliResult::Action::kExit, false, 1, {}};
  Config& c = result.config;
  auto options = describeOptions();
  po::options_description all;
  all.add(options).add_options()("args", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  positional.add("args", -1);
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv)
                  .options(all)
                  .positional(positional)
                  .style(po::command_line_style::unix_style ^ po::command_line_style::allow_guessing)
                  .run(),
              vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << kUsage << "\n" << options << "\nPlugins are named (memory, file, null, pattern, example1)"
                << " or given by path.\nFilters: " << filterList() << ".\nSee nbdcage(1).\n";
      result.exitStatus = 0;
      return result;
    }
    if (vm.count("dump-config") && !vm.count("args")) {
      dumpConfig();
      result.exitStatus = 0;
      return result;
    }
    bool version = vm.count("version") > 0;
    if (version) std::cout << "nbdcage " NBDCAGE_VERSION "\n" << std::flush;
    if (version && !vm.count("args")) {
      result.exitStatus = 0;
      return result;
    }
    readOptions(vm, c);
    auto args = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
    if (args.empty()) fail("no plugin given: try 'nbdcage memory 1G' or see 'nbdcage --help'");
    c.socketActivation = listen::socketActivated();
    c.plugin = args[0];
    routeParams(vm, std::vector<std::string>(args.begin() + 1, args.end()), c);
    checkConflicts(c, vm);
    if (vm.count("dump-plugin") && c.single) fail("--dump-plugin cannot be used with -s");
    c.pluginPath = findPlugin(c.plugin);
    if (auto language = shebangLanguage(c.pluginPath)) {
      // As the kernel would run it: LANGUAGE's plugin, the script first.
      std::string script = c.pluginPath;
      c.plugin = *language;
      c.pluginPath = findPlugin(*language);
      if (shebangLanguage(c.pluginPath)) fail("plugin '" + script + "': '" + *language + "' is not a language plugin");
      c.params.insert(c.params.begin(), script);
    }
    c.hostPath = findHost();
    if (vm.count("dump-config")) {
      // With a plugin: also the sandbox its host would get (main prints it).
      dumpConfig();
      result.action = CliResult::Action::kDumpSandbox;
      result.exitStatus = 0;
      return result;
    }
    if (version || vm.count("dump-plugin")) {
      // The plugin's own facts come from loading it, in a plugin host.
      result.action = CliResult::Action::kProbe;
      result.dumpPlugin = vm.count("dump-plugin") > 0;
      result.exitStatus = 0;
      return result;
    }
  } catch (const po::error& e) {
    std::cerr << "nbdcage: " << e.what() << " (see 'nbdcage --help')\n";
    return result;
  } catch (const std::runtime_error& e) {
    std::cerr << "nbdcage: " << e.what() << "\n";
    return result;
  }
  result.action = CliResult::Action::kServe;
  result.exitStatus = 0;
  return result;
}

}  // namespace nbdcage
