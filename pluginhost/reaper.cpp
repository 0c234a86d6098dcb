// The init of the host's PID namespace.  Whatever the plugin leaves behind
// is reparented to the namespace's init, so init must reap it, or zombies
// pile up until the process limit refuses the plugin's next fork; and
// init's own child statuses must stay the plugin's (a shell plugin waits
// for its scripts).  So init is this: a process that only waits, passes on
// the signals it is sent, and ends with the host.  A signal sent into a
// namespace's init without a handler is dropped, so without it SIGSEGV or
// SIGTERM from outside could not reach the host either.
//
//   frontend ── clone3(CLONE_NEWPID) ──▶ init: nbdcage-reaper (pid 1)
//                                          └─ fork ─▶ the host (pid 2):
//                                               sandbox, plugin, serving
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "pluginhost/sandbox.h"

namespace nbdcage::host {

void becomeReaper() {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);  // before the fork: no signal is lost
  pid_t host = fork();
  if (host < 0) {
    perror("nbdcage-pluginhost: fork");
    _exit(1);
  }
  if (host == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    return;
  }
  prctl(PR_SET_NAME, "nbdcage-reaper", 0, 0, 0);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // The host's descriptors are the host's: its control socket must end
  // when the host ends, not when we do.
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    dup2(devnull, STDOUT_FILENO);
  }
  syscall(SYS_close_range, 3U, ~0U, 0U);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(host, sig);
      continue;
    }
    int status;
    pid_t gone;
    while ((gone = waitpid(-1, &status, WNOHANG)) > 0)
      if (gone == host)  // the shell's convention for a signal: the frontend decodes it
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
}

}  // namespace nbdcage::host
