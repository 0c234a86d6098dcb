// The plugin host's sandbox, entered before the plugin is loaded: no
// plugin code (constructors, load, config, get_ready, threads it starts)
// ever runs outside it.  The sequence is fixed and lives in one place
// (sandbox.cpp); the file-system layer is in landlock.cpp and the syscall
// policy in seccomp-policy.cpp.
#pragma once

#include <string>
#include <vector>

namespace nbdcage::host {

// What the frontend allows (its --allow-* options and the paths the
// plugin's parameters name), as the host's command line carries it.
struct SandboxPolicy {
  bool enabled = true;
  bool network = false;
  bool exec = false;
  struct Path {
    std::string path;
    bool writable;
  };
  std::vector<Path> paths;
  bool readonly = false;  // -r: every granted path is read-only
  // As root: the unprivileged identity to become (--identity UID:GID).
  bool switchIdentity = false;
  unsigned uid = 0, gid = 0;
  // rlimits (0: none given): tasks, address space in bytes, open files.
  unsigned long long maxProcesses = 0, maxMemory = 0, maxFiles = 0;
  // Directories the frontend handed over as open descriptors (file's
  // dirfd=): Landlock lets the plugin open what is in them.
  std::vector<int> passedDirs;
};

// The granted paths, opened (O_PATH) before the mount namespace changes;
// the plugin's own file is one of them (read-only).
struct PreparedPaths {
  struct Grant {
    std::string path;
    int fd;
    bool writable;
  };
  std::vector<Grant> grants;
  bool privateTmp = false;  // /tmp and /dev/shm are the host's own
};

// As the init of a new PID namespace: forks the host, which returns, and
// stays behind as the namespace's reaper (reaper.cpp) until the host ends,
// then exits with its status (128+N for signal N).
void becomeReaper();

// Closes every inherited descriptor except stdin, stdout, stderr and the
// control socket (fd 3).  Runs first thing in main().
// Where the descriptors the frontend hands over (KEY=-FD, fd=, dirfd=)
// start: the frontend's Config::kPassedFdBase.
inline constexpr int kPassedFdBase = 1000;

// Closes every descriptor but 0-3 and the `passed` ones from
// kPassedFdBase on.
void closeInheritedFds(unsigned passed = 0);

// Enters the sandbox.  Exits the process when a layer the kernel offers
// cannot be applied: a host that cannot box itself must not serve.  A
// layer the kernel lacks is reported on stderr and skipped.
void enterSandbox(const SandboxPolicy& policy, const std::string& pluginPath, bool verbose);

// Landlock (landlock.cpp): the ABI the kernel offers (0: none), and the
// rules applied to this process and its future threads and children.
// Returns the ABI applied (0: none).
int landlockAbi();
int applyLandlock(const SandboxPolicy& policy, const PreparedPaths& paths);

// The reviewed syscall policy (seccomp-policy.cpp).
void installSeccompPolicy(const SandboxPolicy& policy);

}  // namespace nbdcage::host
