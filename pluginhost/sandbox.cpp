#include "pluginhost/sandbox.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/securebits.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace nbdcage::host {

namespace {

[[noreturn]] void fatal(const char* what) {
  fprintf(stderr, "nbdcage-pluginhost: sandbox: %s: %s\n", what, strerror(errno));
  _exit(1);
}

// The frontend spawned us into new namespaces if the kernel let it, and
// says which (CLONE_NEW* flags) in our environment.
unsigned long namespacesGiven() {
  const char* told = getenv("NBDCAGE_HOST_NAMESPACES");
  unsigned long flags = told ? strtoul(told, nullptr, 10) : 0;
  unsetenv("NBDCAGE_HOST_NAMESPACES");
  return flags;
}

bool under(const std::string& path, const char* dir) {
  size_t n = strlen(dir);
  return path.compare(0, n, dir) == 0 && path.size() > n && path[n] == '/';
}

// Creates `path`'s parents inside the private /tmp or /dev/shm (those that
// exist already are left alone), then `path` itself as
// an empty file or directory for a bind mount to cover.
bool makeMountPoint(const std::string& path, bool dir) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1))
    if (mkdir(path.substr(0, slash).c_str(), 0755) < 0 && errno != EEXIST) return false;
  if (dir) return mkdir(path.c_str(), 0755) == 0 || errno == EEXIST;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// A private /tmp (and /dev/shm): a fresh tmpfs, with only what the plugin
// was granted under /tmp bound back in (read-only grants read-only, since
// the tmpfs itself is writable).
bool makePrivateTmp(PreparedPaths& paths) {
  for (const auto& g : paths.grants)
    if (g.path == "/" || g.path == "/tmp" || g.path == "/dev" || g.path == "/dev/shm") return false;  // all of it
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) return false;
  if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) fatal("mount /dev/shm");
  for (const auto& g : paths.grants) {
    if (!under(g.path, "/tmp") && !under(g.path, "/dev/shm")) continue;
    struct stat st;
    if (fstat(g.fd, &st) < 0 || !makeMountPoint(g.path, S_ISDIR(st.st_mode))) fatal(g.path.c_str());
    std::string source = "/proc/self/fd/" + std::to_string(g.fd);
    if (mount(source.c_str(), g.path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) fatal(g.path.c_str());
    if (!g.writable && mount(nullptr, g.path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) < 0)
      fatal(g.path.c_str());
  }
  return true;
}

// Every capability gone, in every set, and no way back: uid 0 gains none
// at execve (NOROOT), and none of it can be undone (the locks).
void dropCapabilities() {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);  // EPERM: had none
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                       SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  prctl(PR_SET_SECUREBITS, bits, 0, 0, 0);  // EPERM without CAP_SETPCAP: then there was nothing to drop
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &header, data) < 0) fatal("capset");
}

}  // namespace

void closeInheritedFds() {
  if (syscall(SYS_close_range, 4U, ~0U, 0U) == -1) {
    for (int fd = 4; fd < 1024; ++fd) close(fd);
  }
}

void enterSandbox(const SandboxPolicy& policy, const std::string& pluginPath, bool verbose) {
  // 1. The granted paths, opened while they are still where the user sees them.
  PreparedPaths paths;
  int plugin = open(pluginPath.c_str(), O_PATH | O_CLOEXEC);
  if (plugin < 0) fatal(pluginPath.c_str());
  for (const auto& p : policy.paths) {
    int fd = open(p.path.c_str(), O_PATH | O_CLOEXEC);
    if (fd >= 0) paths.grants.push_back({p.path, fd, p.writable && !policy.readonly});
  }
  paths.grants.push_back({pluginPath, plugin, false});

  // 2. Mounts, in the mount namespace we were spawned into: nothing
  //    propagates back; /proc shows only our PID namespace; /tmp and
  //    /dev/shm are our own.
  unsigned long namespaces = namespacesGiven();
  bool mountNs = (namespaces & CLONE_NEWNS) != 0;
  bool pidNs = (namespaces & CLONE_NEWPID) != 0;
  if (mountNs) {
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) fatal("make / private");
    if (pidNs && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
      fprintf(stderr, "nbdcage-pluginhost: sandbox: cannot mount a private /proc: %s\n", strerror(errno));
    paths.privateTmp = makePrivateTmp(paths);
  }
  if (paths.privateTmp) {
    setenv("TMPDIR", "/tmp", 1);
    setenv("HOME", "/tmp", 1);
  }

  // 3. The kernel picks us first when memory runs out, never the frontend.
  int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (oom >= 0) {
    (void)!write(oom, "1000", 4);
    close(oom);
  }
  // 4. No core dumps: a crashing plugin must not leave client data on disk.
  struct rlimit core = {0, 0};
  setrlimit(RLIMIT_CORE, &core);

  // 5. No privilege: no capability in any set, no way to gain one.
  dropCapabilities();
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) fatal("prctl(PR_SET_NO_NEW_PRIVS)");
  // Not dumpable: nothing of the same user can ptrace it or read its
  // memory.  (Not in AddressSanitizer builds, whose leak checker must.)
#if !defined(__SANITIZE_ADDRESS__)
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif

  // 6. Files, TCP and scopes: Landlock.
  int abi = applyLandlock(policy, paths);
  if (abi == 0)
    fprintf(stderr, "nbdcage-pluginhost: sandbox: this kernel has no Landlock: the plugin can reach every file "
                    "the host's user can (the other layers still hold)\n");

  // 7. Syscalls.
  installSeccompPolicy(policy);

  if (verbose)
    fprintf(stderr,
            "nbdcage-pluginhost: debug: sandbox: pid namespace %s, mount namespace %s, private /tmp %s, "
            "landlock ABI %d, network %s, exec %s, %zu granted paths\n",
            pidNs ? "yes" : "no", mountNs ? "yes" : "no", paths.privateTmp ? "yes" : "no", abi,
            policy.network ? "allowed" : "refused", policy.exec ? "allowed" : "refused", policy.paths.size());
  for (const auto& g : paths.grants) close(g.fd);
}

}  // namespace nbdcage::host
