#include "pluginhost/sandbox.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/securebits.h>
#include <sched.h>
#include <sys/mount.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

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

// Creates `path`'s missing parents (in a tmpfs of ours: the private /tmp,
// /dev/shm, or one that hides a directory our identity cannot search),
// then `path` itself as an empty file or directory for a mount to cover.
// What exists already (inside a grant mounted earlier) is left alone.
bool makeMountPoint(const std::string& path, bool dir) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) return true;
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1))
    if (mkdir(path.substr(0, slash).c_str(), 0755) < 0 && errno != EEXIST) return false;
  if (dir) return mkdir(path.c_str(), 0755) == 0 || errno == EEXIST;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// Would uid:gid (no supplementary groups, no capabilities) be let in by
// the mode bits?  `want` is R_OK/W_OK/X_OK bits.
bool modeAllows(const struct stat& st, unsigned uid, unsigned gid, int want) {
  unsigned shift = st.st_uid == uid ? 6 : st.st_gid == gid ? 3 : 0;
  unsigned bits = (st.st_mode >> shift) & 7;
  return (want & R_OK ? bits & 4 : 1) && (want & W_OK ? bits & 2 : 1) && (want & X_OK ? bits & 1 : 1);
}

// The topmost directory above `path` that uid:gid cannot search ("" if
// every one can be searched).
std::string unsearchableAncestor(const std::string& path, unsigned uid, unsigned gid) {
  for (size_t slash = 0; slash != std::string::npos; slash = path.find('/', slash + 1)) {
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    struct stat st;
    if (stat(dir.c_str(), &st) == 0 && !modeAllows(st, uid, gid, X_OK)) return dir;
  }
  return "";
}

// Writes the one-line uid and gid maps of `pid`'s new user namespace:
// uidInside there is uidOutside here, and so for the gid.  (We are root
// outside, so any ids may be mapped.)
bool writeIdMaps(pid_t pid, unsigned uidInside, unsigned uidOutside, unsigned gidInside, unsigned gidOutside) {
  std::string dir = "/proc/" + std::to_string(pid) + "/";
  for (auto [file, inside, outside] :
       {std::tuple{"uid_map", uidInside, uidOutside}, std::tuple{"gid_map", gidInside, gidOutside}}) {
    std::string text = std::to_string(inside) + " " + std::to_string(outside) + " 1\n";
    int fd = open((dir + file).c_str(), O_WRONLY | O_CLOEXEC);
    bool done = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (fd >= 0) close(fd);
    if (!done) return false;
  }
  return true;
}

// Drops the supplementary groups and takes `uid` and `gid` as every one of
// ours (real, effective, saved).
void becomeIds(unsigned uid, unsigned gid) {
  if (setgroups(0, nullptr) < 0) fatal("setgroups");
  if (setresgid(gid, gid, gid) < 0) fatal("setresgid");
  if (setresuid(uid, uid, uid) < 0) fatal("setresuid");
}

// A user namespace that maps `owner`'s ids to the identity's, for
// idmapped mounts: a child unshares one, we write its maps (we are root
// outside), keep a descriptor of it, and let the child go.
int idmapNamespace(unsigned ownerUid, unsigned ownerGid, unsigned uid, unsigned gid) {
  int ready[2], release[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return -1;
  if (pipe2(release, O_CLOEXEC) < 0) {
    close(ready[0]);
    close(ready[1]);
    return -1;
  }
  pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    close(release[1]);  // or the read below never sees the end
    char ok = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    (void)!read(release[0], &ok, 1);
    _exit(0);
  }
  close(ready[1]);
  close(release[0]);
  int ns = -1;
  char ok = 'n';
  if (child > 0 && read(ready[0], &ok, 1) == 1 && ok == 'y' && writeIdMaps(child, ownerUid, uid, ownerGid, gid))
    ns = open(("/proc/" + std::to_string(child) + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC);
  close(ready[0]);
  close(release[1]);  // the child exits
  if (child > 0) waitpid(child, nullptr, 0);
  return ns;
}

// The mount layer: a private /tmp, /var/tmp and /dev/shm; as an unprivileged
// identity, directories it cannot search (a 0700 /root above a granted
// file, say) hidden under tmpfs; and every grant mounted at its own path
// again, read-only where granted read-only and, for the identity,
// idmapped so that it finds the file as its owner.  Returns false (and
// says why in `why`) when a grant cannot be given to the identity: the
// caller then keeps uid 0 rather than break the plugin.
bool mountGrants(const SandboxPolicy& policy, PreparedPaths& paths, std::string& why) {
  bool privateTmp = true;
  for (const auto& g : paths.grants)
    if (g.path == "/" || g.path == "/tmp" || g.path == "/dev" || g.path == "/dev/shm" || g.path == "/var" ||
        g.path == "/var/tmp")
      privateTmp = false;  // all of it
  bool identity = policy.switchIdentity;
  auto inPrivateTmp = [&](const std::string& path) {
    return privateTmp && (under(path, "/tmp") || under(path, "/dev/shm") || under(path, "/var/tmp"));
  };
  std::sort(paths.grants.begin(), paths.grants.end(),
            [](const auto& a, const auto& b) { return a.path.size() < b.path.size(); });

  // 1. Each grant cloned as a mount of its own, detached, while every
  //    path is still where the user sees it.
  std::vector<int> trees;
  std::vector<std::pair<std::pair<unsigned, unsigned>, int>> namespaces;  // owner -> idmap user namespace
  bool ok = true;
  for (const auto& g : paths.grants) {
    int tree = open_tree(g.fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0) fatal(("clone a mount of " + g.path).c_str());
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    if (!g.writable) attr.attr_set |= MOUNT_ATTR_RDONLY;
    if (identity) {
      struct stat st;
      if (fstat(g.fd, &st) < 0) fatal(g.path.c_str());
      std::pair<unsigned, unsigned> owner{st.st_uid, st.st_gid};
      auto found = std::find_if(namespaces.begin(), namespaces.end(), [&](const auto& n) { return n.first == owner; });
      if (found == namespaces.end())
        found = namespaces.insert(namespaces.end(),
                                  {owner, idmapNamespace(st.st_uid, st.st_gid, policy.uid, policy.gid)});
      attr.attr_set |= MOUNT_ATTR_IDMAP;
      attr.userns_fd = static_cast<uint64_t>(found->second);
      if (found->second < 0 || mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
        why = g.path + ": " + (found->second < 0 ? "no user namespace for an idmapped mount" : strerror(errno)) +
              " (an idmapped mount is how the host's identity reaches it)";
        ok = false;
        close(tree);
        break;
      }
    } else if (attr.attr_set != 0 && mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
      fatal(("make " + g.path + " read-only").c_str());
    }
    trees.push_back(tree);
  }
  for (const auto& n : namespaces)
    if (n.second >= 0) close(n.second);
  if (!ok) {
    for (int t : trees) close(t);
    return false;
  }

  // 2. Our own /tmp and /dev/shm, and tmpfs over what the identity
  //    could not walk through.
  if (privateTmp) {
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) fatal("mount /tmp");
    if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) fatal("mount /dev/shm");
    // Where plugins put large temporary files (nbdkit's example3, tmpdisk's
    // default): ours too, if the machine has one.
    struct stat vt;
    if (stat("/var/tmp", &vt) == 0 && S_ISDIR(vt.st_mode) &&
        mount("tmpfs", "/var/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
      fatal("mount /var/tmp");
  }
  std::vector<std::string> hidden;
  for (const auto& g : paths.grants) {
    if (!identity || inPrivateTmp(g.path)) continue;
    std::string dir = unsearchableAncestor(g.path, policy.uid, policy.gid);
    auto coveredBy = [&](const std::string& h) { return dir == h || under(dir, h.c_str()); };
    if (dir.empty() || std::any_of(hidden.begin(), hidden.end(), coveredBy)) continue;
    if (dir == "/") {
      why = "/ itself cannot be searched by uid " + std::to_string(policy.uid);
      for (int t : trees) close(t);
      return false;
    }
    if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) fatal(("hide " + dir).c_str());
    hidden.push_back(dir);
  }

  // 3. The grants back at their own paths, parents first.
  for (size_t i = 0; i < paths.grants.size(); ++i) {
    const auto& g = paths.grants[i];
    bool inTmpfs = inPrivateTmp(g.path) ||
                   std::any_of(hidden.begin(), hidden.end(), [&](const auto& h) { return under(g.path, h.c_str()); });
    struct stat st;
    if (inTmpfs && (fstat(g.fd, &st) < 0 || !makeMountPoint(g.path, S_ISDIR(st.st_mode)))) fatal(g.path.c_str());
    // Outside our tmpfs, only a changed mount needs to cover the original.
    bool changed = inTmpfs || identity || !g.writable;
    if (changed && move_mount(trees[i], "", AT_FDCWD, g.path.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
      fatal(("mount " + g.path).c_str());
    close(trees[i]);
  }
  paths.privateTmp = privateTmp;
  return true;
}

// Without a mount namespace nothing can be remounted: the identity must
// reach each grant as the files are.
bool reachableAsIs(const SandboxPolicy& policy, const PreparedPaths& paths, std::string& why) {
  for (const auto& g : paths.grants) {
    struct stat st;
    int want = R_OK | (g.writable ? W_OK : 0);
    if (!unsearchableAncestor(g.path, policy.uid, policy.gid).empty() || fstat(g.fd, &st) < 0 ||
        !modeAllows(st, policy.uid, policy.gid, want | (S_ISDIR(st.st_mode) ? X_OK : 0))) {
      why = g.path + ": not reachable by uid " + std::to_string(policy.uid) + " without a mount namespace";
      return false;
    }
  }
  return true;
}

// Becomes root of a new user namespace that maps uid 0 to the identity:
// the process limit then counts this host's tasks alone.  The maps are
// written by a helper left outside (we cannot map ourselves to another
// uid from inside).  False if the kernel refuses user namespaces.
bool enterIdentityNamespace(const SandboxPolicy& policy) {
  int go[2];
  if (pipe2(go, O_CLOEXEC) < 0) fatal("pipe");
  pid_t self = getpid();
  pid_t helper = fork();
  if (helper < 0) fatal("fork");
  if (helper == 0) {
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1 || c != 'y') _exit(1);
    _exit(writeIdMaps(self, 0, policy.uid, 0, policy.gid) ? 0 : 1);
  }
  close(go[0]);
  bool entered = unshare(CLONE_NEWUSER) == 0;
  char c = entered ? 'y' : 'n';
  (void)!write(go[1], &c, 1);
  close(go[1]);
  int status = 0;
  while (waitpid(helper, &status, 0) < 0 && errno == EINTR) {}
  if (!entered) return false;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    errno = EPERM;
    fatal("map the identity's user namespace");
  }
  becomeIds(0, 0);
  return true;
}

// Every capability gone, in every set, and no way back: uid 0 gains none
// at execve (NOROOT), and none of it can be undone (the locks).  With
// `identity` (no user namespace for it), the uid and gid change in
// between, while CAP_SETUID is still there.
void dropCapabilities(const SandboxPolicy* identity) {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);  // EPERM: had none
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                       SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  prctl(PR_SET_SECUREBITS, bits, 0, 0, 0);  // EPERM without CAP_SETPCAP: then there was nothing to drop
  if (identity != nullptr) becomeIds(identity->uid, identity->gid);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &header, data) < 0) fatal("capset");
}

void setLimit(int resource, unsigned long long value) {
  struct rlimit lim = {static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
  struct rlimit now;
  // Never above the hard limit we were given: that would fail.
  if (getrlimit(resource, &now) == 0 && now.rlim_max != RLIM_INFINITY && now.rlim_max < value)
    lim = {now.rlim_max, now.rlim_max};
  if (setrlimit(resource, &lim) < 0) fatal("setrlimit");
}

}  // namespace

void closeInheritedFds(unsigned passed) {
  const unsigned base = kPassedFdBase;
  if (syscall(SYS_close_range, 4U, base - 1, 0U) == -1)
    for (unsigned fd = 4; fd < base; ++fd) close(static_cast<int>(fd));
  if (syscall(SYS_close_range, base + passed, ~0U, 0U) == -1)
    for (unsigned fd = base + passed; fd < 65536; ++fd) close(static_cast<int>(fd));
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
  //    /dev/shm are our own; the grants are mounted for our identity.
  unsigned long namespaces = namespacesGiven();
  bool mountNs = (namespaces & CLONE_NEWNS) != 0;
  bool pidNs = (namespaces & CLONE_NEWPID) != 0;
  char cwd[4096];
  bool haveCwd = getcwd(cwd, sizeof cwd) != nullptr;
  SandboxPolicy effective = policy;
  std::string why;
  if (mountNs) {
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) fatal("make / private");
    if (pidNs && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
      fprintf(stderr, "nbdcage-pluginhost: sandbox: cannot mount a private /proc: %s\n", strerror(errno));
    if (!mountGrants(effective, paths, why)) {
      effective.switchIdentity = false;
      if (!mountGrants(effective, paths, why)) fatal("mount the granted paths");
    }
  } else if (effective.switchIdentity && !reachableAsIs(effective, paths, why)) {
    effective.switchIdentity = false;
  }
  if (policy.switchIdentity && !effective.switchIdentity)
    fprintf(stderr, "nbdcage-pluginhost: sandbox: the host stays uid 0 (without capabilities), since %s; "
                    "--sandbox-user=root says this is meant\n", why.c_str());
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

  // 5. No privilege: an identity of no account (as root), no capability in
  //    any set, no way to gain one.  In a user namespace of its own when
  //    the kernel allows, so that the process limit is this host's alone.
  bool userNs = (namespaces & CLONE_NEWUSER) != 0;
  if (effective.switchIdentity && !userNs && (namespaces & CLONE_NEWNS) && enterIdentityNamespace(effective))
    userNs = true, effective.switchIdentity = false;  // done: uid 0 in here is the identity outside
  dropCapabilities(effective.switchIdentity ? &effective : nullptr);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) fatal("prctl(PR_SET_NO_NEW_PRIVS)");
  // Not dumpable: nothing of the same user can ptrace it or read its
  // memory.  (AddressSanitizer builds stay dumpable, as the leak checker
  // needs, though a change of uid cleared it.)
#if !defined(__SANITIZE_ADDRESS__)
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#else
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
  // The working directory again, as the mounts now show it.
  if (haveCwd && chdir(cwd) < 0 && chdir("/") < 0) fatal("chdir");

  // Resources.
  if (policy.maxProcesses) setLimit(RLIMIT_NPROC, policy.maxProcesses);
  if (policy.maxFiles) setLimit(RLIMIT_NOFILE, policy.maxFiles);
#if defined(__SANITIZE_ADDRESS__)
  if (policy.maxMemory)
    fprintf(stderr, "nbdcage-pluginhost: sandbox: --sandbox-memory is not applied in an AddressSanitizer build "
                    "(its shadow memory is larger than any limit)\n");
#else
  if (policy.maxMemory) setLimit(RLIMIT_AS, policy.maxMemory);
#endif

  // 6. Files, TCP and scopes: Landlock.
  int abi = applyLandlock(policy, paths);
  if (abi == 0)
    fprintf(stderr, "nbdcage-pluginhost: sandbox: this kernel has no Landlock: the plugin can reach every file "
                    "the host's user can (the other layers still hold)\n");

  // 7. Syscalls.
  installSeccompPolicy(policy);

  std::string identity = policy.switchIdentity && (userNs || effective.switchIdentity)
                             ? std::to_string(policy.uid) + ":" + std::to_string(policy.gid)
                             : "as started (uid " + std::to_string(geteuid()) + " here)";
  if (verbose)
    fprintf(stderr,
            "nbdcage-pluginhost: debug: sandbox: identity %s, pid namespace %s, mount namespace %s, user namespace "
            "%s, private /tmp %s, landlock ABI %d, network %s, exec %s, %zu granted paths\n",
            identity.c_str(), pidNs ? "yes" : "no", mountNs ? "yes" : "no", userNs ? "yes" : "no",
            paths.privateTmp ? "yes" : "no", abi,
            policy.network ? "allowed" : "refused", policy.exec ? "allowed" : "refused", policy.paths.size());
  for (const auto& g : paths.grants) close(g.fd);
}

}  // namespace nbdcage::host
