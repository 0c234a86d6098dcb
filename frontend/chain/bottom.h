// The last stage of a chain: where requests finally complete.  Besides the
// Next interface it offers its connection's event loop what to wait on:
// completions are delivered only from drainCompletions() (or hostDied()),
// on the loop's thread, never from another thread.
//
// The plugin host's handle (frontend/host/remote-handle.h) is the real one;
// tests and the fuzz target use an in-process one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "frontend/chain/next.h"

namespace nbdcage::chain {

class Bottom : public Next {
 public:
  // Delivers waiting completions (at most `max`).
  virtual void drainCompletions(size_t max) = 0;
  // Requests submitted and not yet completed, whoever in the chain sent
  // them: a connection may end only once this is 0.
  virtual uint32_t inFlight() const = 0;
  // Before blocking in poll(): announces the sleep.  False if completions
  // are already waiting (do not block).
  virtual bool armDoorbell() = 0;
  virtual void disarmDoorbell() = 0;
  // Readable when completions may be waiting; clearDoorbell() after that.
  virtual int doorbellFd() const = 0;
  virtual void clearDoorbell() = 0;
  // Milliseconds until the next timed duty (the oldest request's deadline,
  // or housekeeping such as giving idle memory back; 0: now), or -1 when
  // there is none: how long poll() may sleep.
  virtual int msUntilDeadline() const { return -1; }
  // After waking: does what is due.  A request past its deadline fails
  // with EIO, and so does everything else below (whatever was answering is
  // given up on).
  virtual void enforceDeadlines() {}
  // Readable once whatever completes requests is gone; then hostDied()
  // fails what it still held.
  virtual int hostDeathFd() const = 0;
  virtual void hostDied() = 0;
  // True once no request will ever succeed again.
  virtual bool broken() const = 0;
};

}  // namespace nbdcage::chain
