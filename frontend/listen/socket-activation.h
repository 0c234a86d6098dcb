// systemd socket activation: listening sockets handed over in fds 3..3+N-1,
// announced by LISTEN_PID (our pid) and LISTEN_FDS (N), optionally named
// by LISTEN_FDNAMES.
#pragma once

#include <vector>

#include "frontend/listen/listeners.h"

namespace nbdcage::listen {

// True when the environment says these sockets are for this process.  A
// LISTEN_PID naming another process is reported once and ignored.
bool socketActivated();

// Takes the passed sockets: checks each is a listening stream socket, makes
// it close-on-exec and non-blocking, and unsets the variables so that no
// child sees them.  Throws ListenError on a malformed hand-over.
std::vector<Listener> takeActivatedSockets();

}  // namespace nbdcage::listen
