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
  // Opens each filter's stage over `bottom`, the filter nearest the plugin
  // first.  Throws what a filter's open throws.
  Handle(kj::Own<Bottom> bottom, const std::vector<std::unique_ptr<Filter>>& filters, const std::string& exportName,
         bool readonly);
  ~Handle();
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  // The export's name: the plugin's default_export for the empty name.
  const std::string& exportName() const { return name_; }
  // Where the client's requests go in.
  Next& top() { return *boundaries_.back(); }
  const ExportInfo& info() const { return boundaries_.back()->info(); }
  // The bottom of the chain: its doorbell and the host's death are what
  // the connection's event loop waits on (and the timers of the filters'
  // stages that have them).
  Bottom& bottom() { return timed_.empty() ? *bottom_ : static_cast<Bottom&>(*clocked_); }

 private:
  class ClockedBottom;
  std::string name_;
  kj::Own<Bottom> bottom_;
  std::vector<Timed*> timed_;        // the stages that are Timed
  kj::Own<Bottom> clocked_;          // bottom_ with their timers, if any
  std::vector<kj::Own<Next>> stages_;          // bottom first
  std::vector<kj::Own<Boundary>> boundaries_;  // bottom first; back() is the top
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
