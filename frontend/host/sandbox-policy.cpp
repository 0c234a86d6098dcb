#include "frontend/host/sandbox-policy.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
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
// script= (language plugins), tar= (tar).  Scripts are only read.
const std::set<std::string> kPathKeys = {"file", "dir", "tar"};
const std::set<std::string> kReadOnlyPathKeys = {"script"};

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

}  // namespace

SandboxPolicy makeSandboxPolicy(const Config& c) {
  SandboxPolicy p;
  p.enabled = c.sandbox;
  p.network = c.allowNetwork;
  p.exec = c.allowExec || kExecPlugins.count(pluginShortName(c.pluginPath)) > 0;
  bool writable = !c.readonly;
  for (const auto& param : c.params) {
    auto eq = param.find('=');
    if (eq == std::string::npos) {
      grant(p, param, writable);  // a bare value: the plugin's magic key
      continue;
    }
    std::string key = param.substr(0, eq), value = param.substr(eq + 1);
    if (kPathKeys.count(key)) grant(p, value, writable);
    else if (kReadOnlyPathKeys.count(key)) grant(p, value, false);
    else if (key == "url" && value.starts_with("file://")) grant(p, value.substr(7), false);
  }
  for (const auto& a : c.allowPaths) {
    bool ro = a.ends_with(":ro");
    std::string path = ro ? a.substr(0, a.size() - 3) : a;
    std::error_code ec;
    if (path.empty() || !fs::exists(path, ec))
      throw std::runtime_error("--allow-path: " + path + ": no such file or directory");
    grant(p, path, !ro && !c.readonly);
  }
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
  out += "sandbox_identity=" + std::string(geteuid() == 0 ? "uid 0" : "the caller's uid, as root of a user namespace") +
         ", no capabilities, no_new_privs, not dumpable\n";
  out += std::string("sandbox_namespaces=pid,mount,ipc,uts") + (network ? "" : ",net") + (geteuid() == 0 ? "" : ",user") +
         " (each as the kernel allows; the log says when it refuses)\n";
  out += "sandbox_landlock_abi=" + std::to_string(abi < 0 ? 0 : abi) + "\n";
  out += std::string("sandbox_seccomp=deny-list") + (exec ? "" : ", no exec") + ", socket families unix,netlink" +
         (network ? ",inet,inet6" : "") + "\n";
  out += std::string("sandbox_network=") + (network ? "allowed" : "none") + "\n";
  out += std::string("sandbox_exec=") + (exec ? "allowed" : "refused") + "\n";
  out += "sandbox_private=/proc,/tmp,/dev/shm\n";
  for (const auto& g : paths) out += std::string("sandbox_path=") + g.path + (g.writable ? "" : ":ro") + "\n";
  out += "sandbox_limits=core 0, oom_score_adj 1000\n";
  return out;
}

}  // namespace nbdcage::frontend
