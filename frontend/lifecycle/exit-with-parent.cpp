#include "frontend/lifecycle/exit-with-parent.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace nbdcage::lifecycle {

bool armExitWithParent() {
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1) return false;
  // If the parent died before prctl, no signal will ever come.
  return getppid() == parent && parent != 1;
}

}  // namespace nbdcage::lifecycle
