// The plugin host's sandbox, entered once the plugin is configured and
// ready and before the first byte of client data arrives.  The sequence is
// fixed and lives in one place (sandbox.cpp); the syscall policy lives in
// seccomp-policy.cpp.
#pragma once

namespace nbdcage::host {

// Closes every inherited descriptor except stdin, stdout, stderr and the
// control socket (fd 3).  Runs first thing in main().
void closeInheritedFds();

// rlimits, no_new_privs, seccomp.  Exits the process on failure: a host
// that cannot box itself must not serve.
void enterSandbox();

// The reviewed syscall policy (seccomp-policy.cpp).
void installSeccompPolicy();

}  // namespace nbdcage::host
