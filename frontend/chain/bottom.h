// The last stage of a chain: where requests finally complete.  Besides the
// Next interface it offers its connection's event loop what to wait on
// (prepareWait/wake: the loop never learns what the descriptors are):
// completions are delivered only from drainCompletions() or wake(), on the
// loop's thread, never from another thread.
//
// The plugin host's handle (frontend/host/remote-handle.h) is the real one;
// tests and the fuzz target use an in-process one.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>

#include "frontend/chain/next.h"

namespace nbdcage::chain {

class Bottom : public Next {
 public:
  // What the connection's loop waits on below it, beside its client: a few
  // descriptors and a time, which only the Bottom understands (the
  // protocol code polls them and hands them back).
  struct Wait {
    static constexpr int kMaxFds = 6;  // the host's two, and the stages' wakers
    pollfd fds[kMaxFds];
    int count = 0;
    int timeoutMs = -1;  // -1: no time limit
  };

  // Delivers waiting completions (at most `max`).
  virtual void drainCompletions(size_t max) = 0;
  // Requests submitted and not yet completed, whoever in the chain sent
  // them: a connection may end only once this is 0.
  virtual uint32_t inFlight() const = 0;
  // Before the loop sleeps: fills `w`.  `completions`: the loop has room
  // for completions, so it wants to wake for them.  False: completions are
  // already waiting, so do not sleep (and do not call wake()).
  virtual bool prepareWait(bool completions, Wait& w) = 0;
  // After poll() filled in `w`'s revents (or failed): does what woke the
  // loop and what is due.  A request past its deadline fails with EIO, and
  // so does everything else below (whatever was answering is given up on);
  // so does everything when whatever completes requests is gone.
  // Completions themselves are delivered only by drainCompletions().
  virtual void wake(const Wait& w) = 0;
  // True once no request will ever succeed again.
  virtual bool broken() const = 0;
  // Nothing is in flight, and the chain is being opened again over a new
  // bottom: close what this one opened now (its plugin handle) and break.
  // Its memory stays, for the slots still reserved, until it is destroyed.
  virtual void retire() = 0;
};

}  // namespace nbdcage::chain
