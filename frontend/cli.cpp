#include "frontend/cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdint>

#include <boost/program_options.hpp>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
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
      ("long-options", "print every long option, one a line, and exit")
      ("short-options", "print every short option, one a line, and exit")
      ("unix,U", po::value<std::string>()->value_name("SOCKET"),
       "listen on a Unix domain socket; '-' makes a private one")
      ("port,p", po::value<std::string>()->value_name("PORT"), "listen on TCP port PORT (default 10809)")
      ("ipaddr,i", po::value<std::string>()->value_name("ADDR"), "listen on this address only")
      ("ipv4-only,4", "listen on (and resolve -i to) IPv4 addresses only")
      ("ipv6-only,6", "listen on (and resolve -i to) IPv6 addresses only")
      ("keepalive", "send TCP keepalives, so a client that vanished is noticed")
      ("vsock", "listen on AF_VSOCK (for virtual machines), port from -p")
      ("single,s", "serve one connection on stdin/stdout, then exit")
      ("stdin", "the same as --single")
      ("foreground,f", "stay in the foreground")
      ("pidfile,P", po::value<std::string>()->value_name("PIDFILE"), "write the server's pid here once it serves")
      ("readonly,r", "serve the export read-only")
      ("exportname,e", po::value<std::string>()->value_name("NAME"), "the export name used in $uri with --run")
      ("print-uri", "print the URI clients connect to on stdout once serving")
      ("threads,t", po::value<unsigned>()->value_name("N"), "worker threads per connection (default 16; 0: the default)")
      ("newstyle,n", "speak the newstyle protocol (the default: nbdcage speaks no other)")
      ("name", po::value<std::string>()->value_name("NAME"),
       "call this server NAME in its messages and in the system log (default nbdcage)")
      ("swap", "the export is swap space of this machine: lock nbdcage and its plugin host in memory (mlockall)")
      ("verbose,v", "print debug messages (always on stderr)")
      ("log", po::value<std::string>()->value_name("stderr|syslog|null|default|PATH"),
       "where messages go: a PATH is a file they are appended to (default: stderr, or syslog once in the background)")
      ("debug,D", po::value<std::vector<std::string>>()->composing()->value_name("NAME.FLAG=N"),
       "set the plugin's debug flag NAME_debug_FLAG to N")
      ("filter", po::value<std::vector<std::string>>()->composing()->value_name("FILTER"),
       "add FILTER to the chain (repeatable; the first is nearest the client)")
      ("timeout", po::value<std::string>()->value_name("SECONDS"),
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

// nbdkit's other spellings of options above: the same option.
const std::pair<const char*, const char*> kAliases[] = {
    {"export", "exportname"},     {"export-name", "exportname"}, {"no-fork", "foreground"},
    {"ip-addr", "ipaddr"},        {"pid-file", "pidfile"},       {"read-only", "readonly"},
    {"new-style", "newstyle"},    {"time-out", "timeout"},       {"keep-alive", "keepalive"},
    {"print-url", "print-uri"},   {"show-uri", "print-uri"},     {"show-url", "print-uri"},
};

// nbdkit's options that nbdcage does not have, each with why and what to
// do instead.  They are accepted by the parser so that the message, not
// "unrecognised option", is what the user reads.
struct Refused {
  const char* names;  // boost's "long,s" form
  bool takesValue;
  const char* why;
};
const Refused kRefused[] = {
    {"oldstyle,o", false, "the oldstyle protocol is not supported: nbdcage speaks newstyle only (as every client since 2012 does)"},
    {"old-style", false, "the oldstyle protocol is not supported: nbdcage speaks newstyle only (as every client since 2012 does)"},
    {"user,u", true,
     "not supported: start nbdcage as that user instead (runuser, systemd's User=; for a port below 1024, systemd "
     "socket activation); the plugin host runs as --sandbox-user whatever nbdcage runs as"},
    {"group,g", true,
     "not supported: start nbdcage as that group instead (runuser -g, systemd's Group=); the plugin host runs as "
     "--sandbox-user whatever nbdcage runs as"},
    {"tls", true, "TLS is not supported yet: nbdcage serves plaintext only (--tls=off is accepted; or use a TLS proxy)"},
    {"tls-certificates", true, "TLS is not supported yet: nbdcage serves plaintext only"},
    {"tls-psk", true, "TLS is not supported yet: nbdcage serves plaintext only"},
    {"tls-verify-peer", false, "TLS is not supported yet: nbdcage serves plaintext only"},
    {"tls-priority", true, "TLS is not supported yet: nbdcage serves plaintext only"},
    {"mask-handshake", true, "not supported yet: nbdcage always offers the fixed newstyle handshake without zeroes"},
    {"no-sr", false, "not supported yet: nbdcage always offers structured replies (a client may decline them)"},
    {"no-structured-replies", false, "not supported yet: nbdcage always offers structured replies (a client may decline them)"},
    {"no-mc", false, "not supported yet: nbdcage always offers base:allocation (a client may decline it)"},
    {"no-meta-contexts", false, "not supported yet: nbdcage always offers base:allocation (a client may decline it)"},
};

po::options_description describeHidden() {
  po::options_description d;
  for (const auto& [alias, target] : kAliases) {
    bool valued = std::string(target) == "exportname" || std::string(target) == "ipaddr" ||
                  std::string(target) == "pidfile" || std::string(target) == "timeout";
    if (valued)
      d.add_options()(alias, po::value<std::string>());
    else
      d.add_options()(alias, "");
  }
  for (const auto& r : kRefused) {
    if (r.takesValue)
      d.add_options()(r.names, po::value<std::string>());
    else
      d.add_options()(r.names, "");
  }
  d.add_options()("selinux-label", po::value<std::string>());
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
uint64_t parseNumber(const std::string& name, const std::string& v, bool sizes) {
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
uint64_t parseLimit(const po::variables_map& vm, const std::string& name, bool sizes) {
  return parseNumber(name, vm[name].as<std::string>(), sizes);
}

// Whether option `name` was given, under its name or one of nbdkit's aliases.
bool given(const po::variables_map& vm, const std::string& name) {
  if (vm.count(name)) return true;
  for (const auto& [alias, target] : kAliases)
    if (target == name && vm.count(alias)) return true;
  return false;
}
// The value of option `name` (or an alias); given() must be true.
std::string valueOf(const po::variables_map& vm, const std::string& name) {
  if (vm.count(name)) return vm[name].as<std::string>();
  for (const auto& [alias, target] : kAliases)
    if (target == name && vm.count(alias)) return vm[alias].as<std::string>();
  return "";
}

// A refused option that was given: its message.
void refuseUnsupported(const po::variables_map& vm) {
  for (const auto& r : kRefused) {
    std::string names = r.names, name = names.substr(0, names.find(','));
    if (!vm.count(name)) continue;
    // --tls=off is what nbdcage does.
    if (name == "tls" && vm[name].as<std::string>() == "off") continue;
    if (name == "tls" && vm[name].as<std::string>() != "on" && vm[name].as<std::string>() != "require")
      fail("--tls must be off, on or require, not '" + vm[name].as<std::string>() + "'");
    fail("--" + name + ": " + r.why);
  }
  if (vm.count("selinux-label")) {
    std::error_code ec;
    if (!fs::exists("/sys/fs/selinux/enforce", ec))
      fail("--selinux-label: SELinux is not enabled on this machine, so there is no label to give the socket");
    fail("--selinux-label is not supported yet: nbdcage cannot label its sockets");
  }
}

// The options' values into `c`, each checked on the way.
void readOptions(const po::variables_map& vm, Config& c) {
  refuseUnsupported(vm);
  if (vm.count("unix")) c.unixSocket = vm["unix"].as<std::string>();
  if (vm.count("port")) c.port = vm["port"].as<std::string>();
  if (given(vm, "ipaddr")) c.ipaddr = valueOf(vm, "ipaddr");
  if (vm.count("ipv4-only") && vm.count("ipv6-only")) fail("-4 and -6 cannot be used together");
  c.ipFamily = vm.count("ipv4-only") ? 4 : vm.count("ipv6-only") ? 6 : 0;
  c.keepalive = given(vm, "keepalive");
  c.printUri = given(vm, "print-uri");
  c.swap = vm.count("swap") > 0;
  if (vm.count("name")) {
    c.name = vm["name"].as<std::string>();
    if (c.name.empty() || c.name.find_first_of(" \t\n:") != std::string::npos)
      fail("--name must be a word without spaces or ':', not '" + c.name + "'");
  }
  c.single = vm.count("single") || vm.count("stdin");
  c.vsock = vm.count("vsock") > 0;
  c.foreground = given(vm, "foreground");
  c.readonly = given(vm, "readonly");
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
  if (given(vm, "exportname")) c.exportName = valueOf(vm, "exportname");
  if (vm.count("threads")) {
    c.threads = vm["threads"].as<unsigned>();
    if (c.threads == 0) c.threads = 16;  // as nbdkit: 0 is the default
    if (c.threads > 1024) fail("-t: the number of threads must be between 0 and 1024");
  }
  if (vm.count("run")) c.run = vm["run"].as<std::string>();
  if (vm.count("request-timeout")) c.requestTimeout = vm["request-timeout"].as<unsigned>();
  if (given(vm, "timeout")) {
    uint64_t t = parseNumber("timeout", valueOf(vm, "timeout"), false);
    if (t > 86400 * 365) fail("--timeout: at most a year (31536000 s), not " + std::to_string(t));
    c.handshakeTimeout = static_cast<unsigned>(t);
  }
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
      std::string module = d.substr(0, d.find('.')), flag = d.substr(0, d.find('='));
      if (module == "nbdkit" || module == "nbdcage") {
        // The server's own flags.
        if (flag == module + ".environ")
          c.debugEnviron = std::strtol(d.c_str() + d.find('=') + 1, nullptr, 0) != 0;
        else
          std::cerr << "nbdcage: warning: -D " << flag << ": nbdcage has no such debug flag (it has "
                    << module << ".environ; -v traces the rest)\n";
      } else if (filters::exists(module)) {
        std::cerr << "nbdcage: warning: -D " << flag << ": nbdcage's filters have no debug flags (-v traces what "
                  << module << " does)\n";
      } else {
        c.debugFlags.push_back(d);  // the plugin's: the host sets NAME_debug_FLAG, or says it has none
      }
    }
  }
  if (vm.count("log")) {
    std::string to = vm["log"].as<std::string>();
    if (to.find('/') != std::string::npos) {
      c.log = "file:" + fs::absolute(to).string();
      int fd = open(c.log->c_str() + 5, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
      if (fd < 0) fail("--log=" + to + ": " + strerror(errno));
      close(fd);
    } else if (to != "default") {
      if (to != "stderr" && to != "syslog" && to != "null")
        fail("--log must be stderr, syslog, null, default or a file's path (with a '/'), not '" + to + "'");
      c.log = to;
    }
  }
  if (given(vm, "pidfile")) c.pidfile = fs::absolute(valueOf(vm, "pidfile")).string();
}

// "exitlast, exitwhen, ...": the filters nbdcage has, for messages.
std::string filterList(const std::string& separator = ", ") {
  std::string list;
  for (const auto& n : filters::names()) list += (list.empty() ? "" : separator) + n;
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

// KEY=-FD with FD one of ours (a shell's 3<secret): it goes to the first
// plugin host as kPassedFdBase + i, and the parameter is rewritten to name
// that, so nbdkit_read_password's -FD form reads it there.
// The same for file's fd=FD and dirfd=FD.
void passDescriptors(Config& c) {
  for (auto& p : c.params) {
    auto eq = p.find('=');
    if (eq == std::string::npos) continue;
    size_t digits = p.compare(eq, 2, "=-") == 0                                ? eq + 2
                    : p.starts_with("fd=") || p.starts_with("dirfd=") ? eq + 1
                                                                               : std::string::npos;
    if (digits == std::string::npos || digits >= p.size() ||
        p.find_first_not_of("0123456789", digits) != std::string::npos || p.size() - digits > 6)
      continue;
    int fd = std::stoi(p.substr(digits));
    if (fd <= 2 || fcntl(fd, F_GETFD) == -1 || c.passedFds.size() >= 16) continue;  // the host says why
    p = p.substr(0, digits) + std::to_string(Config::kPassedFdBase + static_cast<int>(c.passedFds.size()));
    c.passedFds.push_back(fd);
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
  if (c.ipFamily != 0 && (c.unixSocket || c.single || c.vsock || c.socketActivation))
    fail(std::string(c.ipFamily == 4 ? "-4" : "-6") + " is for TCP: it cannot be used with -U, -s, --vsock or socket activation");
  if (c.printUri && (c.single || c.socketActivation))
    fail("--print-uri cannot be used with -s or socket activation: nbdcage does not know the address clients use");
  if (c.single && c.run) fail("--run cannot be used with -s: the command needs a socket to connect to");
  if (c.single && c.socketActivation) fail("-s cannot be used with socket activation (LISTEN_FDS)");
  if (c.single && listeners > 1) fail("-s serves stdin/stdout: it cannot be used with -U, -p or -i");
  if (c.unixSocket && c.unixSocket->size() >= 108 && *c.unixSocket != "-")
    fail("-U: path too long: " + std::to_string(c.unixSocket->size()) + " bytes, the maximum is 107");
  if (c.exportName.size() > 4096) fail("-e: export name longer than 4096 bytes");
}

}  // namespace

namespace {

// The command line with each @PATH argument replaced by the lines of the
// file PATH (one argument a line, as written; blank lines and lines that
// start with '#' skipped), as nbdkit 1.46 reads arguments from a file.  Only
// a whole word without spaces counts (a data plugin's "@4 1 2" is data).
std::vector<std::string> expandArgumentFiles(int argc, const char* const* argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() < 2 || a[0] != '@' || a.find_first_of(" \t") != std::string::npos) {
      out.push_back(a);
      continue;
    }
    std::ifstream in(a.substr(1));
    if (!in) fail(a + ": cannot read the argument file '" + a.substr(1) + "': " + strerror(errno));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      out.push_back(line);
    }
  }
  return out;
}

// --long-options / --short-options: every option nbdcage accepts, refused
// ones too (they are nbdkit's, and a script that probes them gets the
// reason when it uses them).
void printOptionNames(bool longNames, std::initializer_list<const po::options_description*> groups) {
  std::vector<std::string> names;
  for (const auto* g : groups)
    for (const auto& o : g->options()) {
      std::string shortName = o->canonical_display_name(po::command_line_style::allow_dash_for_short);
      if (longNames && !o->long_name().empty()) names.push_back("--" + o->long_name());
      if (!longNames && shortName.size() == 2 && shortName[0] == '-') names.push_back(shortName);
    }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) std::cout << n << "\n";
}

// "nbdcage VERSION (nbdkit INTERFACE)": our own release, then the nbdkit
// release whose command line and plugin API nbdcage implements, which is
// what a script comparing nbdkit versions means to ask.
std::string versionLine() {
  return std::string("nbdcage ") + NBDCAGE_VERSION + " (nbdkit " + NBDKIT_INTERFACE_VERSION + ")\n";
}

// Build facts as KEY=VALUE lines, as nbdkit's --dump-config does, for
// scripts that need to know where things are.
void dumpConfig() {
  std::string host;
  try {
    host = findHost();
  } catch (const std::runtime_error&) {
    host = std::string(NBDCAGE_LIBEXECDIR) + "/nbdcage-pluginhost";
  }
  // version*: the nbdkit interface level (nbdkit-probing(1) compares
  // these); nbdcage_version: our own release.
  std::string version = NBDKIT_INTERFACE_VERSION;
  auto dot = version.find('.');
  auto dot2 = version.find('.', dot + 1);
  std::cout << "binary=" << selfDirectory() << "/nbdcage\n"
            << "bindir=" << NBDCAGE_BINDIR << "\n"
            << "exit_with_parent=yes\n"
            << "filterdir=\n"  // filters are built in: there is no directory of them
            << "filters=" << filterList(",") << "\n"
            << "host_cpu=" << NBDCAGE_HOST_CPU << "\n"
            << "host_os=linux-gnu\n"
            << "libdir=" << NBDCAGE_LIBDIR << "\n"
            << "libexecdir=" << NBDCAGE_LIBEXECDIR << "\n"
            << "mandir=" << NBDCAGE_MANDIR << "\n"
            << "name=nbdcage\n"
            << "nbdcage_version=" << NBDCAGE_VERSION << "\n"
            << "nbdkit_plugindir=" << NBDKIT_PLUGINDIR << "\n"
            << "plugin_path=" << pluginPathText() << "\n"
            << "plugindir=" << NBDCAGE_PLUGINDIR << "\n"
            << "pluginhost=" << host << "\n"
            << "run_default_socket=Unix\n"
            << "sbindir=" << NBDCAGE_BINDIR << "\n"
            << "selinux=no\n"
            << "sysconfdir=" << NBDCAGE_SYSCONFDIR << "\n"
            << "timeout_option=yes\n"
            << "tls=no\n"
            << "version=" << version << "\n"
            << "version_major=" << version.substr(0, dot) << "\n"
            << "version_minor=" << version.substr(dot + 1, dot2 - dot - 1) << "\n"
            << "vsock_option=yes\n"
            << "zstd=no\n";
}

}  // namespace

std::string pluginShortName(const std::string& path) {
  std::string base = fs::path(path).filename().string();
  for (std::string prefix : {"nbdkit-", "nbdcage-"})
    if (base.starts_with(prefix) && base.ends_with("-plugin.so"))
      return base.substr(prefix.size(), base.size() - prefix.size() - 10);
  return base;
}

bool Config::configuredFromStdin() const {
  for (const auto& p : params)
    if (p == "-" || p.ends_with("=-")) return true;
  return !passedFds.empty();
}

std::string Config::onCrash() const {
  if (!onPluginCrash.empty()) return onPluginCrash;
  // A new host could not read it again: its stdin is nothing by then.
  if (configuredFromStdin()) return "fail";
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
  CliResult result{CliResult::Action::kExit, CliResult::Probe::kVersion, 1, {}};
  Config& c = result.config;
  auto options = describeOptions();
  auto hidden = describeHidden();
  po::options_description all;
  all.add(options).add(hidden).add_options()("args", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  positional.add("args", -1);
  try {
    std::vector<std::string> words = expandArgumentFiles(argc, argv);
    po::variables_map vm;
    po::store(po::command_line_parser(words)
                  .options(all)
                  .positional(positional)
                  .style(po::command_line_style::unix_style ^ po::command_line_style::allow_guessing)
                  .run(),
              vm);
    po::notify(vm);
    if (vm.count("long-options") || vm.count("short-options")) {
      printOptionNames(vm.count("long-options") > 0, {&options, &hidden});
      result.exitStatus = 0;
      return result;
    }
    if (vm.count("help")) {
      std::cout << kUsage << "\n" << options << "\nPlugins are named (memory, file, null, pattern, example1, tar, curl, zero, full, ones, random, sparse-random, data, split, partitioning, sh, eval, "
                << "or any of nbdkit's in " << NBDKIT_PLUGINDIR << ") or given by path.\nFilters: " << filterList()
                << ".\nnbdkit's other spellings work too:";
      for (const auto& [alias, target] : kAliases) std::cout << " --" << alias << " (--" << target << ")";
      std::cout << ".\nSee nbdcage(1).\n" << std::flush;
      result.exitStatus = 0;
      if (!vm.count("args")) return result;
      // PLUGIN --help: the plugin's own description and parameters follow.
      auto args = vm["args"].as<std::vector<std::string>>();
      c.plugin = args[0];
      c.pluginPath = findPlugin(c.plugin);
      c.hostPath = findHost();
      std::cout << "\n" << std::flush;
      result.action = CliResult::Action::kProbe;
      result.probe = CliResult::Probe::kHelp;
      return result;
    }
    if (vm.count("dump-config") && !vm.count("args")) {
      dumpConfig();
      result.exitStatus = 0;
      return result;
    }
    bool version = vm.count("version") > 0;
    if (version && !vm.count("args")) {
      std::cout << versionLine() << std::flush;
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
    passDescriptors(c);
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
    if (version) std::cout << versionLine() << std::flush;  // the plugin was found: its line follows
    if (version || vm.count("dump-plugin")) {
      // The plugin's own facts come from loading it, in a plugin host.
      result.action = CliResult::Action::kProbe;
      result.probe = vm.count("dump-plugin") ? CliResult::Probe::kDump : CliResult::Probe::kVersion;
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
