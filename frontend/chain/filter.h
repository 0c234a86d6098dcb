// A filter: a configured object made once at startup (its parameters
// checked then), which makes one stage per open handle.  Everything it does
// not override forwards to `next` unchanged.
//
//   Filter (one, shared by every connection thread: thread-safe)
//     exitBeforeServing()  after the plugin is ready, before listening
//     start(control)       once, before the first connection
//     preconnect(client)   each new connection, before the greeting
//     disconnect()         its end, if this filter's preconnect let it in
//     listExports(next)    NBD_OPT_LIST
//     open(next, ...)  ->  FilterStage (one per handle, one thread: no locks)
//                            info / reserve / release / submit, forwarded by
//                            default; destroying it is the handle's close
#pragma once

#include <kj/memory.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/client.h"
#include "frontend/chain/next.h"

namespace nbdcage::chain {

// The server, as a filter may drive it.
class ServerControl {
 public:
  // Any thread: stop the way SIGTERM does (refuse new clients, finish
  // requests in flight, exit 0).  Repeated calls are harmless.
  virtual void requestShutdown() = 0;

 protected:
  ~ServerControl() = default;
};

// A stage that must act at a time of its own (a request it holds back
// until then) implements this too: the connection's loop sleeps no longer
// than nextTimer(), and calls onTimer() once it is due, on its thread.
class Timed {
 public:
  using Clock = std::chrono::steady_clock;
  virtual std::optional<Clock::time_point> nextTimer() const = 0;
  virtual void onTimer(Clock::time_point now) = 0;

 protected:
  ~Timed() = default;
};

// A handle's instance of a filter: passes everything through.
class FilterStage : public Next {
 public:
  explicit FilterStage(Next& next) : next_(next) {}
  const ExportInfo& info() const override { return next_.info(); }
  std::optional<Slot> reserve(uint32_t bufLen) override { return next_.reserve(bufLen); }
  void release(const Slot& slot) override { next_.release(slot); }
  void submit(const Io& io) override { next_.submit(io); }

 protected:
  Next& next() const { return next_; }

 private:
  Next& next_;
};

// A stage that shows the stage above a changed ExportInfo (no extents, a
// new size, ...): a copy of what is below, which the constructor of the
// filter's stage edits.
class ChangedInfoStage : public FilterStage {
 public:
  explicit ChangedInfoStage(Next& next) : FilterStage(next), info_(next.info()) {}
  const ExportInfo& info() const override { return info_; }

 protected:
  ExportInfo info_;
};

using ExportList = std::vector<std::pair<std::string, std::string>>;  // name, description

class Filter {
 public:
  virtual ~Filter() = default;
  virtual const char* name() const = 0;
  // True: an event the filter waits for has already happened, so nbdcage
  // exits 0 at once (nothing listens, no --run command starts).
  virtual bool exitBeforeServing() { return false; }
  // Once, before the first connection is accepted; `control` outlives the
  // filter.
  virtual void start(ServerControl& control) { (void)control; }
  // False closes the new connection before the greeting.  `client` is who
  // connected, as the kernel saw its socket.
  virtual bool preconnect(const Client& client) {
    (void)client;
    return true;
  }
  // A connection whose preconnect this filter answered true has ended.
  virtual void disconnect() {}
  virtual ExportList listExports(bool readonly, const std::function<ExportList(bool)>& next) { return next(readonly); }
  // A handle on `exportName` was opened below; this is the filter's stage
  // for it.  May throw to refuse the open (the client gets an error).
  virtual kj::Own<Next> open(Next& next, const std::string& exportName, bool readonly) {
    (void)exportName;
    (void)readonly;
    return kj::heap<FilterStage>(next);
  }
};

}  // namespace nbdcage::chain
