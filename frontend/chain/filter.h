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
//     openOver(below, ...) instead, for the one filter that reopens what is
//                          below it (retry)
//     retryOpen(attempt)   the plugin refused an open: try again, after when?
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

// A stage that is told of work done for it elsewhere (on a worker thread)
// implements this too: the connection's loop polls wakeFd() and calls
// onWake() on its thread when it is readable, and at every turn (so it
// must be cheap when nothing has come).
class Waker {
 public:
  virtual int wakeFd() const = 0;
  virtual void onWake() = 0;

 protected:
  ~Waker() = default;
};

// A stage that may end its connection (time-limit) implements this too:
// once ended() is true, no more requests are read from the client, those
// in flight are answered, and the connection closes.
class Ender {
 public:
  virtual bool ended() const = 0;

 protected:
  ~Ender() = default;
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

// What the stage of a filter that reopens the export (retry) stands on:
// every stage below it and the plugin's handle, which it may close and open
// again.  As a Next it is the current opening.  Slots reserved through it
// before a reopen stay valid (their memory is kept) until given back with
// releaseOld; requests go only to the current opening.
class Reopener : public Next {
 public:
  // Counts the openings: a slot belongs to the generation it was reserved in.
  virtual uint64_t generation() const = 0;
  // True once no request below will succeed (its plugin host is gone, or
  // a reopen failed): a reopen is the way on.
  virtual bool broken() const = 0;
  // Requests in flight anywhere below (a reopen waits for 0).
  virtual uint32_t inFlight() const = 0;
  // Closes everything below (the plugin's handle first) and opens it again,
  // read-only if asked: a new generation.  Throws if the new open fails;
  // then everything below stays broken, in the old generation.
  virtual void reopen(bool readonly) = 0;
  virtual void releaseOld(uint64_t generation, const Slot& slot) = 0;
};

// What a filter's open may use to read from the stages below it before it
// answers (partition reads the partition table): one request at a time,
// waited for on the connection's thread.
class OpenReader {
 public:
  // 0 or an errno; `count` at most 1 MiB.
  virtual int read(uint64_t offset, uint32_t count, uint8_t* out) = 0;

 protected:
  ~OpenReader() = default;
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
  // What the chain calls: open, or, for a filter that reads below before
  // it answers, this.
  virtual kj::Own<Next> openReading(Next& next, const std::string& exportName, bool readonly, OpenReader& reader) {
    (void)reader;
    return open(next, exportName, readonly);
  }
  // True for a filter that never writes below it (cow): the plugin and the
  // filters below it are opened read-only.
  virtual bool writesNothingBelow() const { return false; }
  // True for the filter whose stage may reopen what is below it: its stage
  // is made by openOver, not open.  A chain has at most one.
  virtual bool reopens() const { return false; }
  virtual kj::Own<Next> openOver(Reopener& below, const std::string& exportName, bool readonly) {
    return open(below, exportName, readonly);
  }
  // Opening the export failed below this filter (the plugin refused, or its
  // host was being replaced): how long to wait before attempt number
  // `attempt` (2, 3, ...), or nullopt to give up.
  virtual std::optional<std::chrono::nanoseconds> retryOpen(unsigned attempt) const {
    (void)attempt;
    return std::nullopt;
  }
};

}  // namespace nbdcage::chain
