// The plugin host's syscall policy.  Reviewed as one list.
//
// Default: allow.  Plugins are arbitrary C code (and language runtimes,
// and network clients such as curl), so an allow-list cannot be exact
// without knowing the plugin; instead every call that would let a plugin
// escape its process, change the machine, or attack other processes fails
// with EPERM.  Network and file-system confinement come from namespaces in
// a later stage.
//
// Two rules depend on the policy:
//  - execve/execveat fail with EPERM unless the plugin may run programs
//    (shell and language plugins, or --allow-exec);
//  - socket/socketpair take AF_UNIX and AF_NETLINK only (plus AF_INET and
//    AF_INET6 with --allow-network); other families answer EAFNOSUPPORT, as
//    a kernel built without them would.
//
// New namespaces (unshare, clone with CLONE_NEW*) are refused too: a user
// namespace is the usual door to kernel attack surface that root-only code
// guards.  clone3 passes its flags in memory, where seccomp cannot look, so
// it answers ENOSYS and the C library falls back to clone (as container
// runtimes do).
#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>

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

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
                                        CLONE_NEWUTS, CLONE_NEWIPC,  CLONE_NEWCGROUP, 0x80 /* CLONE_NEWTIME */};

[[noreturn]] void policyFailed(const char* what, int rc) {
  fprintf(stderr, "nbdcage-pluginhost: seccomp: %s: %s\n", what, strerror(-rc));
  _exit(1);
}

// unshare and clone fail with EPERM when their flags ask for any new
// namespace (one rule per flag: rules on one call are alternatives).
void denyNewNamespaces(scmp_filter_ctx ctx) {
  for (int nr : {SCMP_SYS(unshare), SCMP_SYS(clone)}) {
    for (uint64_t flag : kNamespaceFlags) {
      int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
      if (rc < 0) policyFailed("unshare/clone namespace rule", rc);
    }
  }
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc < 0) policyFailed("clone3 rule", rc);
}

void denyExec(scmp_filter_ctx ctx) {
  for (int nr : {SCMP_SYS(execve), SCMP_SYS(execveat)}) {
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0) policyFailed("exec rule", rc);
  }
}

// One rule per refused family: rules on one call are alternatives.
void limitSocketFamilies(scmp_filter_ctx ctx, bool network) {
  for (int family = 0; family < AF_MAX; ++family) {
    bool allowed = family == AF_UNIX || family == AF_NETLINK || (network && (family == AF_INET || family == AF_INET6));
    if (allowed) continue;
    for (int nr : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
      int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                                SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family)));
      if (rc < 0) policyFailed("socket family rule", rc);
    }
  }
}
}  // namespace

void installSeccompPolicy(const SandboxPolicy& policy) {
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
    if (rc < 0) policyFailed("deny rule", rc);
  }
  denyNewNamespaces(ctx);
  if (!policy.exec) denyExec(ctx);
  limitSocketFamilies(ctx, policy.network);
  int rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc < 0) {
    fprintf(stderr, "nbdcage-pluginhost: seccomp_load: %s\n", strerror(-rc));
    _exit(1);
  }
}

}  // namespace nbdcage::host
