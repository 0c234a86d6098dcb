#include "frontend/host/sandbox-policy.h"

#include <grp.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

extern char** environ;

namespace nbdcage::frontend {

namespace {

// Plugins that run programs (sh, eval, cc; mkfs for tmpdisk, linuxdisk,
// ondemand; xorriso for iso; nbd's command=; cdi's podman) or are language
// runtimes whose scripts may: they keep execve.  Everyone else's execve is
// refused.
const std::set<std::string> kExecPlugins = {"sh",     "eval",    "cc",       "python", "perl", "ruby", "lua",
                                            "tcl",    "tmpdisk", "linuxdisk", "ondemand", "iso", "nbd", "cdi"};

// Parameter keys whose value is a path the plugin must reach, with nbdkit's
// meaning: file= (file, split, ...), dir= (file's directory mode, ondemand),
// script= (language plugins), tar= (tar), socket= (nbd's Unix socket to
// the server it proxies).  Scripts are only read.
const std::set<std::string> kPathKeys = {"file", "dir", "tar", "socket"};
const std::set<std::string> kReadOnlyPathKeys = {"script"};
// nbdcage's own plugins whose whole purpose is to fetch over the network
// declare it: they get the network without --allow-network (curl: unless
// its url= is a file:// one).  A third-party plugin of the same name
// (nbdkit's curl) still needs the user's --allow-network.
const std::set<std::string> kNetworkPlugins = {"curl"};
// ... except where a plugin gives such a key another meaning: tar's file=
// names a member inside the archive, never a path to grant.
const std::set<std::pair<std::string, std::string>> kNotPaths = {{"tar", "file"}};

void grant(SandboxPolicy& p, const std::string& path, bool writable) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec).lexically_normal();
  if (ec || !fs::exists(abs, ec)) return;  // the plugin says so, in its own words
  for (auto& g : p.paths)
    if (g.path == abs.string()) {
      g.writable = g.writable || writable;
      return;
    }
  p.paths.push_back({abs.string(), writable});
}

bool keepInHostEnv(const std::string& name) {
  static const std::set<std::string> kKeep = {"PATH",         "LANG",          "LANGUAGE",    "TZ",
                                              "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                                              // testing what holds on older kernels (nbdcage(1), SANDBOX)
                                              "NBDCAGE_SANDBOX_WITHOUT", "NBDCAGE_LANDLOCK_ABI_MAX"};
  return kKeep.count(name) > 0 || name.starts_with("LC_");
}

// USER[:GROUP] (names or numbers) as root sees them; "nobody" without a
// group takes nobody's own.  A machine without a nobody user gets the
// kernel's overflow ids.
SandboxPolicy::Identity resolveIdentity(const std::string& spec) {
  auto colon = spec.find(':');
  std::string user = spec.substr(0, colon), group = colon == std::string::npos ? "" : spec.substr(colon + 1);
  auto number = [](const std::string& s) {
    return !s.empty() && s.size() < 10 &&
           std::all_of(s.begin(), s.end(), [](char ch) { return isdigit(static_cast<unsigned char>(ch)) != 0; });
  };
  SandboxPolicy::Identity id{65534, 65534};
  if (const passwd* pw = getpwnam(user.c_str())) {
    id.uid = pw->pw_uid;
    id.gid = pw->pw_gid;
  } else if (number(user)) {
    id.uid = id.gid = static_cast<unsigned>(std::stoul(user));
  } else if (user != "nobody") {
    throw std::runtime_error("--sandbox-user: there is no user '" + user + "' on this machine");
  }
  if (!group.empty()) {
    if (const struct group* gr = getgrnam(group.c_str())) id.gid = gr->gr_gid;
    else if (number(group)) id.gid = static_cast<unsigned>(std::stoul(group));
    else throw std::runtime_error("--sandbox-user: there is no group '" + group + "' on this machine");
  }
  if (id.uid == 0 || id.gid == 0)
    throw std::runtime_error("--sandbox-user: '" + spec + "' is root's; say --sandbox-user=root to keep uid 0");
  return id;
}

}  // namespace

SandboxPolicy makeSandboxPolicy(const Config& c) {
  SandboxPolicy p;
  p.enabled = c.sandbox;
  p.network = c.allowNetwork;
  if (kNetworkPlugins.count(pluginShortName(c.pluginPath)) &&
      fs::path(c.pluginPath).filename().string().starts_with("nbdcage-")) {
    bool local = false;
    for (const auto& param : c.params) {
      // url=URL, or the bare URL (whose own '=' come after its "://").
      bool bare = param.find('=') == std::string::npos || param.find("://") < param.find('=');
      std::string value = param.starts_with("url=") ? param.substr(4) : bare ? param : "";
      if (!value.empty()) local = value.starts_with("file://") || value.starts_with("file:/");
    }
    p.network = p.network || !local;
  }
  p.exec = c.allowExec || kExecPlugins.count(pluginShortName(c.pluginPath)) > 0;
  bool writable = !c.readonly;
  for (const auto& param : c.params) {
    auto eq = param.find('=');
    if (eq == std::string::npos || param.find("://") < eq) {
      // A bare value: the plugin's magic key (curl's url: a file:// one is read).
      if (param.starts_with("file://")) grant(p, param.substr(7), false);
      else grant(p, param, writable);
      continue;
    }
    std::string key = param.substr(0, eq), value = param.substr(eq + 1);
    if (kNotPaths.count({pluginShortName(c.pluginPath), key})) continue;
    if (kPathKeys.count(key)) grant(p, value, writable);
    else if (kReadOnlyPathKeys.count(key)) grant(p, value, false);
    else if (key == "url" && value.starts_with("file://")) grant(p, value.substr(7), false);
    // nbdkit_read_password's +FILE (password=, proxy-password=, ...).
    else if (key.find("password") != std::string::npos && value.size() > 1 && value[0] == '+')
      grant(p, value.substr(1), false);
  }
  if (pluginShortName(c.pluginPath) == "data") {
    // Its data may read files (<FILE) and run scripts (<(SCRIPT)).
    for (const auto& param : c.params) {
      if (param.find("<(") != std::string::npos) p.exec = true;
      std::istringstream words(param.substr(param.find('=') == std::string::npos ? 0 : param.find('=') + 1));
      for (std::string w; words >> w;)
        if (w.size() > 1 && w[0] == '<' && w[1] != '(') grant(p, w.substr(1), false);
    }
  }
  for (const auto& a : c.allowPaths) {
    bool ro = a.ends_with(":ro");
    std::string path = ro ? a.substr(0, a.size() - 3) : a;
    std::error_code ec;
    if (path.empty() || !fs::exists(path, ec))
      throw std::runtime_error("--allow-path: " + path + ": no such file or directory");
    grant(p, path, !ro && !c.readonly);
  }
  if (c.sandboxUser && geteuid() != 0)
    throw std::runtime_error("--sandbox-user: only root can choose the plugin host's identity (as any other user, "
                             "the host keeps yours)");
  std::string who = c.sandboxUser.value_or("nobody");
  if (geteuid() == 0 && who != "root") p.identity = resolveIdentity(who);
  p.maxProcesses = c.sandboxProcesses;
  p.maxMemory = c.sandboxMemory;
  p.maxFiles = c.sandboxFiles;
  return p;
}

std::vector<std::string> SandboxPolicy::hostArgs() const {
  if (!enabled) return {"--no-sandbox"};
  std::vector<std::string> args;
  if (network) args.push_back("--allow-network");
  if (exec) args.push_back("--allow-exec");
  for (const auto& g : paths) {
    args.push_back(g.writable ? "--allow-rw" : "--allow-ro");
    args.push_back(g.path);
  }
  if (identity) {
    args.push_back("--identity");
    args.push_back(std::to_string(identity->uid) + ":" + std::to_string(identity->gid));
  }
  for (auto [option, value] : {std::pair{"--max-processes", maxProcesses}, {"--max-memory", maxMemory},
                               {"--max-files", maxFiles}})
    if (value != 0) {
      args.push_back(option);
      args.push_back(std::to_string(value));
    }
  return args;
}

std::vector<std::string> SandboxPolicy::hostEnv() const {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    if (!enabled || keepInHostEnv(name)) env.push_back(entry);
  }
  if (enabled && std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.starts_with("PATH="); }))
    env.push_back("PATH=/usr/local/bin:/usr/bin:/bin");
  return env;
}

std::string SandboxPolicy::describe() const {
  std::string out = std::string("sandbox=") + (enabled ? "on" : "off") + "\n";
  if (!enabled) return out;
  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */);
  std::string who = identity ? "uid " + std::to_string(identity->uid) + " gid " + std::to_string(identity->gid) +
                                   " (granted paths through idmapped mounts)"
                     : geteuid() == 0 ? "uid 0 (--sandbox-user=root)"
                                      : "the caller's uid, as root of a user namespace";
  out += "sandbox_identity=" + who + ", no capabilities, no_new_privs, not dumpable\n";
  out += std::string("sandbox_namespaces=pid,mount,ipc,uts") + (network ? "" : ",net") +
         (geteuid() != 0 || identity ? ",user" : "") +
         " (each as the kernel allows; the log says when it refuses)\n";
  out += "sandbox_landlock_abi=" + std::to_string(abi < 0 ? 0 : abi) + "\n";
  out += std::string("sandbox_seccomp=") +
         (exec ? "allow-list, wider for programs and runtimes, exec" : "allow-list, no exec") +
         ", socket families unix,netlink" +
         (network ? ",inet,inet6" : "") + "\n";
  out += std::string("sandbox_network=") + (network ? "allowed" : "none") + "\n";
  out += std::string("sandbox_exec=") + (exec ? "allowed" : "refused") + "\n";
  out += "sandbox_private=/proc,/tmp,/var/tmp,/dev/shm\n";
  for (const auto& g : paths) out += std::string("sandbox_path=") + g.path + (g.writable ? "" : ":ro") + "\n";
  out += "sandbox_limits=core 0, oom_score_adj 1000, processes " +
         (maxProcesses ? std::to_string(maxProcesses) : std::string("unlimited")) + ", address space " +
         (maxMemory ? std::to_string(maxMemory) + " bytes" : std::string("unlimited")) + ", open files " +
         (maxFiles ? std::to_string(maxFiles) : std::string("as inherited")) + "\n";
  return out;
}

}  // namespace nbdcage::frontend
