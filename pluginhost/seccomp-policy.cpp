// The plugin host's syscall policy.  Reviewed as one list.
//
// An allow-list: what glibc, the C++ runtime, Cap'n Proto's event loop,
// the sanitizers and the plugins we know use (traced from the project's and
// Debian's plugins serving real clients, and from the tools that shell and
// language plugins run: sh, coreutils, mke2fs, python, perl), grouped by
// purpose below.  Anything else answers ENOSYS, as a kernel without it
// would: SysV IPC and POSIX queues for C plugins, and for everyone every
// call added to kernels after this list.
//
// Plugins that run programs or language runtimes (sh, eval, python, ...)
// run whatever tools their scripts name, so theirs is wider: exec, the
// set*id calls (no capability stands behind them), SysV IPC and queues,
// FIFOs, extended attributes and a few more that such tools are known to
// use.  A few calls that let a process escape its box, change the machine
// or attack others are also named, to answer EPERM (a clear refusal) rather
// than ENOSYS.
//
// Rules that depend on the policy:
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
#include <cstdlib>
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

// Refused by name, with EPERM, for every plugin (most are outside the
// allow-list anyway: naming them gives a clear refusal, and keeps them
// refused with NBDCAGE_SANDBOX_WITHOUT=allow-list).
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
    SCMP_SYS(personality), SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
    SCMP_SYS(memfd_secret), SCMP_SYS(modify_ldt), SCMP_SYS(uselib), SCMP_SYS(move_pages), SCMP_SYS(migrate_pages),
    SCMP_SYS(mbind), SCMP_SYS(set_mempolicy), SCMP_SYS(process_madvise), SCMP_SYS(process_mrelease),
};

// The allow-list for every plugin (clone, unshare, socket, socketpair,
// execve and ptrace have rules of their own).
const int kAllowed[] = {
    // Memory.
    SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
    SCMP_SYS(msync), SCMP_SYS(mincore), SCMP_SYS(mlock), SCMP_SYS(mlock2), SCMP_SYS(munlock), SCMP_SYS(mlockall),
    SCMP_SYS(munlockall), SCMP_SYS(memfd_create), SCMP_SYS(pkey_alloc), SCMP_SYS(pkey_free), SCMP_SYS(pkey_mprotect),
    // Files: opening, reading, writing, syncing, space, metadata.
    SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(creat), SCMP_SYS(close), SCMP_SYS(close_range),
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64), SCMP_SYS(pwrite64),
    SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(preadv2), SCMP_SYS(pwritev2), SCMP_SYS(lseek),
    SCMP_SYS(sendfile), SCMP_SYS(splice), SCMP_SYS(tee), SCMP_SYS(copy_file_range), SCMP_SYS(fsync),
    SCMP_SYS(fdatasync), SCMP_SYS(sync_file_range), SCMP_SYS(syncfs), SCMP_SYS(fallocate), SCMP_SYS(ftruncate),
    SCMP_SYS(truncate), SCMP_SYS(fadvise64), SCMP_SYS(readahead), SCMP_SYS(flock), SCMP_SYS(fcntl), SCMP_SYS(ioctl),
    SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(statfs),
    SCMP_SYS(fstatfs), SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(readlink),
    SCMP_SYS(readlinkat), SCMP_SYS(getdents), SCMP_SYS(getdents64), SCMP_SYS(getcwd), SCMP_SYS(chdir),
    SCMP_SYS(fchdir), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(rmdir), SCMP_SYS(unlink), SCMP_SYS(unlinkat),
    SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(link), SCMP_SYS(linkat), SCMP_SYS(symlink),
    SCMP_SYS(symlinkat), SCMP_SYS(chmod), SCMP_SYS(fchmod), SCMP_SYS(fchmodat), SCMP_SYS(chown), SCMP_SYS(fchown),
    SCMP_SYS(lchown), SCMP_SYS(fchownat), SCMP_SYS(utime), SCMP_SYS(utimes), SCMP_SYS(utimensat),
    SCMP_SYS(futimesat), SCMP_SYS(umask), SCMP_SYS(getxattr), SCMP_SYS(lgetxattr), SCMP_SYS(fgetxattr),
    SCMP_SYS(listxattr), SCMP_SYS(llistxattr), SCMP_SYS(flistxattr), SCMP_SYS(inotify_init),
    SCMP_SYS(inotify_init1), SCMP_SYS(inotify_add_watch), SCMP_SYS(inotify_rm_watch),
    // Descriptors and waiting on them.
    SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(pipe), SCMP_SYS(pipe2), SCMP_SYS(poll), SCMP_SYS(ppoll),
    SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(epoll_create), SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2), SCMP_SYS(eventfd), SCMP_SYS(eventfd2),
    SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime), SCMP_SYS(signalfd),
    SCMP_SYS(signalfd4),
    // Sockets (which families: limitSocketFamilies).
    SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(sendto),
    SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendmmsg), SCMP_SYS(recvmmsg),
    SCMP_SYS(shutdown), SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
    // Threads, synchronisation, scheduling of our own.
    SCMP_SYS(futex), SCMP_SYS(futex_waitv), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list),
    SCMP_SYS(set_tid_address), SCMP_SYS(rseq), SCMP_SYS(membarrier), SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity), SCMP_SYS(sched_setaffinity), SCMP_SYS(sched_getparam), SCMP_SYS(sched_getscheduler),
    SCMP_SYS(sched_get_priority_max), SCMP_SYS(sched_get_priority_min), SCMP_SYS(sched_getattr),
    SCMP_SYS(getpriority), SCMP_SYS(setpriority), SCMP_SYS(getcpu), SCMP_SYS(arch_prctl), SCMP_SYS(prctl),
    // Signals.
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigsuspend),
    SCMP_SYS(rt_sigtimedwait), SCMP_SYS(rt_sigpending), SCMP_SYS(sigaltstack), SCMP_SYS(kill), SCMP_SYS(tkill),
    SCMP_SYS(tgkill), SCMP_SYS(pause), SCMP_SYS(alarm), SCMP_SYS(setitimer), SCMP_SYS(getitimer),
    SCMP_SYS(timer_create), SCMP_SYS(timer_settime), SCMP_SYS(timer_gettime), SCMP_SYS(timer_getoverrun),
    SCMP_SYS(timer_delete),
    // Processes of our own, and facts about ourselves and the machine.
    SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(wait4), SCMP_SYS(waitid),
    SCMP_SYS(getpid), SCMP_SYS(getppid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
    SCMP_SYS(getegid), SCMP_SYS(getresuid), SCMP_SYS(getresgid), SCMP_SYS(getgroups), SCMP_SYS(getpgrp),
    SCMP_SYS(getpgid), SCMP_SYS(getsid), SCMP_SYS(setpgid), SCMP_SYS(setsid), SCMP_SYS(capget), SCMP_SYS(capset),
    SCMP_SYS(getrlimit), SCMP_SYS(setrlimit), SCMP_SYS(prlimit64), SCMP_SYS(getrusage), SCMP_SYS(times),
    SCMP_SYS(sysinfo), SCMP_SYS(uname), SCMP_SYS(getrandom), SCMP_SYS(pidfd_open), SCMP_SYS(pidfd_send_signal),
    // Time.
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
    SCMP_SYS(gettimeofday), SCMP_SYS(time),
    // Confining ourselves further; the kernel's restart after a signal.
    SCMP_SYS(seccomp), SCMP_SYS(landlock_create_ruleset), SCMP_SYS(landlock_add_rule),
    SCMP_SYS(landlock_restrict_self), SCMP_SYS(restart_syscall),
};

// What plugins that run programs add (execve: denyExec decides).
const int kAllowedForRuntimes[] = {
    SCMP_SYS(execve), SCMP_SYS(execveat),
    // Identity calls: with no capability, only among the ids we have.
    SCMP_SYS(setuid), SCMP_SYS(setgid), SCMP_SYS(setreuid), SCMP_SYS(setregid), SCMP_SYS(setresuid),
    SCMP_SYS(setresgid), SCMP_SYS(setgroups), SCMP_SYS(setfsuid), SCMP_SYS(setfsgid),
    // SysV IPC and POSIX queues (the host has an IPC namespace of its own).
    SCMP_SYS(msgget), SCMP_SYS(msgsnd), SCMP_SYS(msgrcv), SCMP_SYS(msgctl), SCMP_SYS(semget), SCMP_SYS(semop),
    SCMP_SYS(semtimedop), SCMP_SYS(semctl), SCMP_SYS(shmget), SCMP_SYS(shmat), SCMP_SYS(shmdt), SCMP_SYS(shmctl),
    SCMP_SYS(mq_open), SCMP_SYS(mq_unlink), SCMP_SYS(mq_timedsend), SCMP_SYS(mq_timedreceive), SCMP_SYS(mq_notify),
    SCMP_SYS(mq_getsetattr),
    // FIFOs (mkfifo; device nodes need a capability), extended attributes,
    // and what shells, coreutils and interpreters may reach for.
    SCMP_SYS(mknod), SCMP_SYS(mknodat), SCMP_SYS(setxattr), SCMP_SYS(lsetxattr), SCMP_SYS(fsetxattr),
    SCMP_SYS(removexattr), SCMP_SYS(lremovexattr), SCMP_SYS(fremovexattr), SCMP_SYS(sync), SCMP_SYS(vmsplice),
    SCMP_SYS(ioprio_get), SCMP_SYS(ioprio_set), SCMP_SYS(sched_rr_get_interval), SCMP_SYS(sched_setparam),
    SCMP_SYS(sched_setscheduler), SCMP_SYS(sched_setattr), SCMP_SYS(rt_sigqueueinfo), SCMP_SYS(rt_tgsigqueueinfo),
    SCMP_SYS(get_mempolicy),
};

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
                                        CLONE_NEWUTS, CLONE_NEWIPC,  CLONE_NEWCGROUP, 0x80 /* CLONE_NEWTIME */};

[[noreturn]] void policyFailed(const char* what, int rc) {
  fprintf(stderr, "nbdcage-pluginhost: seccomp: %s: %s\n", what, strerror(-rc));
  _exit(1);
}

// unshare and clone fail with EPERM when their flags ask for any new
// namespace (one rule per flag: rules on one call are alternatives).
// With the allow-list, the same calls without those flags are allowed.
void denyNewNamespaces(scmp_filter_ctx ctx, bool allowList) {
  uint64_t all = 0;
  for (uint64_t flag : kNamespaceFlags) all |= flag;
  for (int nr : {SCMP_SYS(unshare), SCMP_SYS(clone)}) {
    for (uint64_t flag : kNamespaceFlags) {
      int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
      if (rc < 0) policyFailed("unshare/clone namespace rule", rc);
    }
    if (allowList) {
      int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, all, 0));
      if (rc < 0) policyFailed("unshare/clone rule", rc);
    }
  }
  if (allowList) return;  // clone3 is not on it: ENOSYS already
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc < 0) policyFailed("clone3 rule", rc);
}

void denyExec(scmp_filter_ctx ctx) {
  for (int nr : {SCMP_SYS(execve), SCMP_SYS(execveat)}) {
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0) policyFailed("exec rule", rc);
  }
}

// One rule per family: rules on one call are alternatives.  With the
// allow-list, the allowed families need rules of their own.
void limitSocketFamilies(scmp_filter_ctx ctx, bool network, bool allowList) {
  for (int family = 0; family < AF_MAX; ++family) {
    bool allowed = family == AF_UNIX || family == AF_NETLINK || (network && (family == AF_INET || family == AF_INET6));
    if (allowed && !allowList) continue;
    for (int nr : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
      int rc = seccomp_rule_add(ctx, allowed ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                                SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family)));
      if (rc < 0) policyFailed("socket family rule", rc);
    }
  }
}
}  // namespace

void installSeccompPolicy(const SandboxPolicy& policy) {
  // NBDCAGE_SANDBOX_WITHOUT=allow-list: the deny-list alone, for every
  // plugin (for showing what the allow-list adds).
  const char* without = getenv("NBDCAGE_SANDBOX_WITHOUT");
  bool allowList = !(without && strstr(without, "allow-list"));
  scmp_filter_ctx ctx = seccomp_init(allowList ? SCMP_ACT_ERRNO(ENOSYS) : SCMP_ACT_ALLOW);
  if (ctx == nullptr) {
    fprintf(stderr, "nbdcage-pluginhost: seccomp_init failed\n");
    _exit(1);
  }
  // A binary tree of the syscall numbers, not a list: every call the host
  // makes passes the filter, and a list of ~250 would cost a comparison
  // each.  (A libseccomp without it builds the list: slower, as strict.)
  (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (seccomp_rule_add(ctx, kAllowPtrace ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0) < 0 &&
      !kAllowPtrace) {
    fprintf(stderr, "nbdcage-pluginhost: seccomp_rule_add(ptrace) failed\n");
    _exit(1);
  }
  auto allow = [&](const auto& list) {
    for (int nr : list) {
      if (nr < 0) continue;  // not on this architecture (or unknown to this libseccomp)
      if (!policy.exec && (nr == SCMP_SYS(execve) || nr == SCMP_SYS(execveat))) continue;
      int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
      if (rc < 0) policyFailed("allow rule", rc);
    }
  };
  if (allowList) allow(kAllowed);
  if (allowList && policy.exec) allow(kAllowedForRuntimes);
  for (int nr : kDenied) {
    if (nr < 0) continue;  // not on this architecture
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0) policyFailed("deny rule", rc);
  }
  denyNewNamespaces(ctx, allowList);
  if (!policy.exec) denyExec(ctx);
  limitSocketFamilies(ctx, policy.network, allowList);
  int rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc < 0) {
    fprintf(stderr, "nbdcage-pluginhost: seccomp_load: %s\n", strerror(-rc));
    _exit(1);
  }
}

}  // namespace nbdcage::host
