#include "pluginhost/sandbox.h"

#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace nbdcage::host {

void closeInheritedFds() {
  if (syscall(SYS_close_range, 4U, ~0U, 0U) == -1) {
    // Older kernels: close what /proc says is open.
    for (int fd = 4; fd < 1024; ++fd) close(fd);
  }
}

void enterSandbox() {
  // 1. No core dumps: a crashing plugin must not leave client data on disk.
  struct rlimit core = {0, 0};
  setrlimit(RLIMIT_CORE, &core);
  // 2. Never gain privileges again (set-uid binaries, file capabilities).
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
    fprintf(stderr, "nbdcage-pluginhost: prctl(PR_SET_NO_NEW_PRIVS): %s\n", strerror(errno));
    _exit(1);
  }
  // 3. Not dumpable: other processes of the same user cannot ptrace it.
  //    (Not in AddressSanitizer builds, whose leak checker must ptrace us.)
#if !defined(__SANITIZE_ADDRESS__)
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
  // 4. The syscall policy.
  installSeccompPolicy();
}

}  // namespace nbdcage::host
