// What the plugin host's sandbox allows, decided once from the command
// line by the frontend and handed to every host it starts (as arguments:
// the host applies it before it loads the plugin).
//
//   files    read-only: the system's library and runtime directories (the
//            host's fixed list); read-write: what the plugin's parameters
//            name (file=, dir=, script=, tar=, url=file://..., or a bare
//            value that names an existing path) and --allow-path
//   network  none, unless --allow-network
//   identity as root: an unprivileged uid and gid (--sandbox-user, default
//            nobody:nogroup); otherwise the caller's own; no capabilities
//   limits   processes (threads too), address space, open files
//   exec     only for plugins that run programs or language runtimes (sh,
//            eval, cc, python, perl, ruby, lua, tcl, and tmpdisk, linuxdisk,
//            ondemand, iso, nbd, cdi), or --allow-exec
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "frontend/cli.h"

namespace nbdcage::frontend {

struct PathGrant {
  std::string path;  // absolute
  bool writable;
};

struct SandboxPolicy {
  bool enabled = true;
  bool network = false;
  bool exec = false;
  std::vector<PathGrant> paths;
  // The identity the host takes, when nbdcage runs as root (and the user
  // did not ask to keep root): resolved here, applied by the host.
  struct Identity {
    unsigned uid, gid;
  };
  std::optional<Identity> identity;
  uint64_t maxProcesses = 0, maxMemory = 0, maxFiles = 0;  // 0: no limit (files: as inherited)

  // The host's command-line options that carry this policy.
  std::vector<std::string> hostArgs() const;
  // The host's whole environment: the locale, PATH, TZ and sanitizer
  // settings of ours, nothing else (no secrets).  Unsandboxed: all of ours.
  std::vector<std::string> hostEnv() const;
  // Lines for --dump-config and -v: "sandbox_KEY=VALUE".
  std::string describe() const;
};

// Throws std::runtime_error for an --allow-path that does not exist, or a
// --sandbox-user that is not a user (or group) of this machine.
SandboxPolicy makeSandboxPolicy(const Config& config);

}  // namespace nbdcage::frontend
