// --exit-with-parent: the kernel sends us SIGTERM when our parent exits.
#pragma once

namespace nbdcage::lifecycle {

// Arms PR_SET_PDEATHSIG; returns false if the parent is already gone (the
// race the re-check closes), in which case the caller exits at once.
bool armExitWithParent();

}  // namespace nbdcage::lifecycle
