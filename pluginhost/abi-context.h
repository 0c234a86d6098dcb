// Per-thread state behind the nbdkit_* helpers the host exports to plugins,
// and the opaque structs that plugins fill in.  This is the only mutable
// global state of the host, and it exists because the C ABI demands it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "pluginhost/plugin.h"

struct nbdkit_extents {
  uint64_t start = 0, end = 0;  // the range the caller asked about
  bool any = false;             // has the plugin added an extent yet?
  uint64_t next = 0;            // where the next extent must begin
  std::vector<nbdcage::host::Extent> list;
};

struct nbdkit_exports {
  std::vector<std::pair<std::string, std::string>> list;
  bool useDefault = false;
};

namespace nbdcage::host {

// Names the plugin in every message it logs ("nbdcage: memory: error: ...").
void setLogName(const std::string& name);
void setVerbose(bool verbose);
// nbdkit_stdio_safe()'s answer: true while the first host configures its
// plugin with nbdcage's stdin.
void setStdioSafe(bool safe);

// What nbdkit_export_name() and nbdkit_peer_*() answer on a thread that
// works for one connection (its open, its requests, its close).
struct Connection {
  std::string exportName;
  std::vector<uint8_t> peerAddress;  // a struct sockaddr; empty: unknown
  bool hasCredentials = false;       // a Unix socket: pid, uid and gid are known
  int64_t pid = -1, uid = -1, gid = -1;
};
// The connection this thread works for (nullptr: none).  Not owned.
void setThreadConnection(const Connection* connection);
// Where nbdkit_disconnect() records its wish for this thread's connection
// (0: none, 1: no new requests, 2: drop the client now); nullptr outside
// the data calls.  Not owned.
void setThreadDisconnect(std::atomic<int>* flag);

// nbdkit_set_error's value for this thread: read and cleared.
int takeThreadError();
// The text of this thread's last nbdkit_error, for RPC error answers.
std::string takeThreadErrorMessage();

// True once the plugin called nbdkit_shutdown().
bool shutdownRequested();
// The server is stopping: sleeps in nbdkit_nanosleep end now (any thread).
void serverStopping();
// Runs (on the caller's thread) when the plugin calls nbdkit_shutdown(),
// at most once; set before serving.
void setShutdownHook(std::function<void()> hook);

}  // namespace nbdcage::host
