// The file-system, network and scope layer: Landlock, as much of it as the
// kernel offers.  Debian 12's headers stop at ABI 2, so the newer rights
// and structure fields are spelt out here.
//
//   ABI 1  file-system rights       ABI 4  TCP bind/connect (all refused)
//   ABI 2  REFER (cross-dir links)  ABI 5  IOCTL_DEV
//   ABI 3  TRUNCATE                 ABI 6  scopes: signals and abstract
//                                          Unix sockets stay inside the host
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "pluginhost/sandbox.h"

namespace nbdcage::host {

namespace {

// Rights beyond Debian 12's headers (the kernel's values).
constexpr uint64_t kFsTruncate = 1ULL << 14;  // ABI 3
constexpr uint64_t kFsIoctlDev = 1ULL << 15;  // ABI 5
constexpr uint64_t kNetBindTcp = 1ULL << 0;   // ABI 4
constexpr uint64_t kNetConnectTcp = 1ULL << 1;
constexpr uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;

// The kernel's struct landlock_ruleset_attr as of ABI 6; older kernels
// accept it as long as the fields they do not know are zero.
struct RulesetAttr {
  uint64_t handledAccessFs;
  uint64_t handledAccessNet;
  uint64_t scoped;
};

struct __attribute__((packed)) PathBeneath {
  uint64_t allowedAccess;
  int32_t parentFd;
};

constexpr uint64_t kRead = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr uint64_t kReadExec = kRead | LANDLOCK_ACCESS_FS_EXECUTE;
constexpr uint64_t kFileOnly =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | kFsTruncate | kFsIoctlDev;

uint64_t fsRightsFor(int abi) {
  uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // ABI 1
  if (abi >= 2) all |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) all |= kFsTruncate;
  if (abi >= 5) all |= kFsIoctlDev;
  return all;
}

// What the system's libraries and runtimes read: the loader, locales,
// Python, Perl, CA certificates, name resolution.  Never /etc as a whole
// (shadow, ssh host keys, sudoers live there).
const char* const kSystemReadOnly[] = {
    "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone",
    "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/host.conf", "/etc/resolv.conf",
    "/etc/gai.conf", "/etc/services", "/etc/protocols", "/etc/networks", "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf", "/etc/ca-certificates", "/etc/ca-certificates.conf", "/etc/alternatives",
    "/etc/python3", "/etc/python3.11", "/etc/perl", "/etc/mime.types", "/etc/locale.alias", "/etc/os-release",
    "/etc/debian_version", "/etc/magic", "/etc/gnutls",
    "/sys/devices/system/cpu",  // the number of CPUs
    "/proc",                    // a fresh one for the host's own PID namespace, where it has one
};

const char* const kDevices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};

class Ruleset {
 public:
  Ruleset(int fd, uint64_t handled) : fd_(fd), handled_(handled) {}
  ~Ruleset() { close(fd_); }

  // Adds `path` with `rights` (narrowed to what a file can take when it is
  // not a directory).  A path that does not exist is skipped.
  void allow(const char* path, uint64_t rights) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) return;
    allowFd(fd, rights);
    close(fd);
  }
  void allowFd(int fd, uint64_t rights) {
    struct stat st;
    if (fstat(fd, &st) < 0) return;
    if (!S_ISDIR(st.st_mode)) rights &= kFileOnly;
    PathBeneath rule{rights & handled_, fd};
    if (syscall(SYS_landlock_add_rule, fd_, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
      fprintf(stderr, "nbdcage-pluginhost: landlock: a rule was refused: %s\n", strerror(errno));
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  uint64_t handled_;
};

}  // namespace

// The kernel's ABI, or less for testing what holds on older kernels:
// NBDCAGE_LANDLOCK_ABI_MAX=N, or NBDCAGE_SANDBOX_WITHOUT=landlock.
int landlockAbi() {
  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 0) return 0;
  const char* without = getenv("NBDCAGE_SANDBOX_WITHOUT");
  if (without && strstr(without, "landlock")) return 0;
  if (const char* max = getenv("NBDCAGE_LANDLOCK_ABI_MAX")) abi = std::min(abi, strtol(max, nullptr, 10));
  return static_cast<int>(abi);
}

int applyLandlock(const SandboxPolicy& policy, const PreparedPaths& paths) {
  int abi = landlockAbi();
  if (abi == 0) return 0;
  RulesetAttr attr{};
  attr.handledAccessFs = fsRightsFor(abi);
  if (abi >= 4 && !policy.network) attr.handledAccessNet = kNetBindTcp | kNetConnectTcp;
  if (abi >= 6) attr.scoped = kScopeAbstractUnix | kScopeSignal;
  int fd = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0));
  if (fd < 0) {
    fprintf(stderr, "nbdcage-pluginhost: landlock: %s; the file-system layer is off\n", strerror(errno));
    return 0;
  }
  Ruleset rules(fd, attr.handledAccessFs);
  uint64_t all = attr.handledAccessFs;
  for (const char* p : kSystemReadOnly) rules.allow(p, kReadExec);
  for (const char* p : kDevices) rules.allow(p, kRead | LANDLOCK_ACCESS_FS_WRITE_FILE);
  if (paths.privateTmp) {
    rules.allow("/tmp", all);
    rules.allow("/dev/shm", all);
    rules.allow("/var/tmp", all);
  }
  for (const auto& g : paths.grants) rules.allowFd(g.fd, g.writable ? all : kReadExec);
  for (int fd : policy.passedDirs) rules.allowFd(fd, policy.readonly ? kReadExec : all);
  if (syscall(SYS_landlock_restrict_self, rules.fd(), 0) < 0) {
    fprintf(stderr, "nbdcage-pluginhost: landlock_restrict_self: %s\n", strerror(errno));
    _exit(1);  // half a sandbox must not serve
  }
  return abi;
}

}  // namespace nbdcage::host
