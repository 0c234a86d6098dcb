// The plugin host's syscall policy.  Reviewed as one list.
//
// Default: allow.  Plugins are arbitrary C code (and language runtimes,
// and network clients such as curl), so an allow-list cannot be exact
// without knowing the plugin; instead every call that would let a plugin
// escape its process, change the machine, or attack other processes fails
// with EPERM.  Network and file-system confinement come from namespaces in
// a later stage.
#include <seccomp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "pluginhost/sandbox.h"

namespace nbdcage::host {

namespace {
#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer builds only: LeakSanitizer stops the host's threads with
// ptrace at exit, so the test build leaves ptrace allowed.
constexpr bool kAllowPtrace = true;
#else
constexpr bool kAllowPtrace = false;
#endif

const int kDenied[] = {
    // Inspecting or controlling other processes.
    SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(kcmp),
    SCMP_SYS(pidfd_getfd),
    // Mounts, namespaces and roots.
    SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(setns),
    SCMP_SYS(open_tree), SCMP_SYS(move_mount), SCMP_SYS(fsopen), SCMP_SYS(fsconfig), SCMP_SYS(fsmount),
    SCMP_SYS(fspick),
    // The kernel and the machine.
    SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(init_module), SCMP_SYS(finit_module),
    SCMP_SYS(delete_module), SCMP_SYS(reboot), SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(acct),
    SCMP_SYS(settimeofday), SCMP_SYS(clock_settime), SCMP_SYS(clock_adjtime), SCMP_SYS(adjtimex),
    SCMP_SYS(sethostname), SCMP_SYS(setdomainname), SCMP_SYS(iopl), SCMP_SYS(ioperm), SCMP_SYS(syslog),
    SCMP_SYS(quotactl), SCMP_SYS(nfsservctl), SCMP_SYS(vhangup), SCMP_SYS(lookup_dcookie),
    // Kernel attack surface a block plugin never needs.
    SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd), SCMP_SYS(keyctl), SCMP_SYS(add_key),
    SCMP_SYS(request_key), SCMP_SYS(fanotify_init), SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at),
    SCMP_SYS(personality),
};
}  // namespace

void installSeccompPolicy() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) {
    fprintf(stderr, "nbdcage-pluginhost: seccomp_init failed\n");
    _exit(1);
  }
  if (!kAllowPtrace && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0) < 0) {
    fprintf(stderr, "nbdcage-pluginhost: seccomp_rule_add(ptrace) failed\n");
    _exit(1);
  }
  for (int nr : kDenied) {
    if (nr < 0) continue;  // not on this architecture
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0) {
      fprintf(stderr, "nbdcage-pluginhost: seccomp_rule_add(%d): %s\n", nr, strerror(-rc));
      _exit(1);
    }
  }
  int rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc < 0) {
    fprintf(stderr, "nbdcage-pluginhost: seccomp_load: %s\n", strerror(-rc));
    _exit(1);
  }
}

}  // namespace nbdcage::host
