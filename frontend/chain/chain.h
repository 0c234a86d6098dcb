// The filter chain: the configured filters in command-line order (the first
// is nearest the client), over the plugin host.
//
//   client -> Boundary -> filter 1 -> Boundary -> ... -> filter N -> Boundary -> Bottom (RemoteHandle -> host)
//
// Chain is built once in main() and shared by every connection; each
// successful open makes a Handle: one stage per filter, a Boundary above
// each stage, and the host's handle at the bottom.
#pragma once

#include <kj/memory.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "frontend/chain/bottom.h"
#include "frontend/chain/boundary.h"
#include "frontend/chain/client.h"
#include "frontend/chain/filter.h"

namespace nbdcage::frontend {
class Supervisor;
}

namespace nbdcage::chain {

// One open export, as the client's connection sees it.
class Handle {
 public:
  // Opens the plugin's handle again (for the filter that reopens, retry).
  // Throws what the plugin's open throws.
  using OpenBottom = std::function<kj::Own<Bottom>(bool readonly)>;

  // Opens each filter's stage over `bottom`, the filter nearest the plugin
  // first.  Throws what a filter's open throws.  `filters` outlives it.
  Handle(kj::Own<Bottom> bottom, OpenBottom reopen, const std::vector<std::unique_ptr<Filter>>& filters,
         const std::string& exportName, bool readonly);
  ~Handle();
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  // The export's name: the plugin's default_export for the empty name.
  const std::string& exportName() const { return name_; }
  // Where the client's requests go in.
  Next& top() { return upper_.boundaries.empty() ? *low_.boundaries.back() : *upper_.boundaries.back(); }
  const ExportInfo& info() const { return const_cast<Handle*>(this)->top().info(); }
  // The bottom of the chain: its doorbell and the host's death are what
  // the connection's event loop waits on (and the timers of the filters'
  // stages that have them; and, past a reopen, the new bottom).
  Bottom& bottom() { return loop_ ? *loop_ : *low_.bottom; }

 private:
  class LoopBottom;
  class Lower;
  class Reader;
  // Stages over a bottom, and a Boundary above each (bottom first; the
  // last Boundary is the top of the part).
  struct Part {
    kj::Own<Bottom> bottom;  // the low part's only
    std::vector<kj::Own<Next>> stages;
    std::vector<kj::Own<Boundary>> boundaries;
  };
  // The stages of filters [first, last) over `below`.
  void build(Part& part, Next& below, size_t first, size_t last, bool readonly);
  static void close(Part& part);  // top down: a stage closes before what it stands on
  void reopen(bool readonly);
  void releaseRetired(uint64_t generation, const Slot& slot);
  void collectTimed();

  OpenBottom reopen_;
  const std::vector<std::unique_ptr<Filter>>& filters_;
  std::string name_;
  size_t lowFirst_ = 0;  // the filters below the one that reopens (all, if none does)
  Part low_;             // over the plugin's handle; replaced on a reopen
  kj::Own<Lower> lower_;  // what the reopening filter's stage stands on
  Part upper_;            // that stage and those above it
  struct Retired {
    uint64_t generation;
    kj::Own<Bottom> bottom;
    uint32_t held;  // slots of it still reserved above
  };
  std::vector<Retired> retired_;
  std::vector<Timed*> timed_;  // the stages that are Timed
  std::vector<Waker*> wakers_;  // and those that are Wakers
  std::vector<Ender*> enders_;  // and Enders
  kj::Own<Bottom> loop_;       // the bottom the loop sees, when there are timers or reopens
};

// Where a connection's handshake gets its exports (a fake in tests).
class ExportSource {
 public:
  virtual ~ExportSource() = default;
  // Any connection thread.  Throws frontend::HostError (a message for the
  // client) if the plugin or a filter refuses.
  virtual kj::Own<Handle> open(const std::string& exportName, bool readonly, const Client& client) = 0;
  virtual ExportList listExports(bool readonly) = 0;
};

class Chain final : public ExportSource {
 public:
  Chain(std::vector<std::unique_ptr<Filter>> filters, frontend::Supervisor& supervisor);

  kj::Own<Handle> open(const std::string& exportName, bool readonly, const Client& client) override;
  ExportList listExports(bool readonly) override;
  // A new connection, before the greeting: false closes it.  After true,
  // disconnect() once it ends.
  bool preconnect(const Client& client);
  void disconnect();

  // Lifecycle, main thread.
  bool exitBeforeServing();
  void start(ServerControl& control);

 private:
  ExportList listFrom(size_t index, bool readonly);

  std::vector<std::unique_ptr<Filter>> filters_;
  frontend::Supervisor& supervisor_;
};

}  // namespace nbdcage::chain
