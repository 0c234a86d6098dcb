// Serves the data plane of one plugin handle: a pool of worker threads
// takes descriptors off the submit ring, calls the plugin, and posts the
// results on the complete ring.
//
//   submit ring --(see nextRequest: a busy worker keeps draining; idle
//                  workers join only when the plugin is slow)--> worker k
//   worker k --plugin call--> result --(produceLock_)--> complete ring
//
// The number of workers honours the plugin's thread model: one for
// SERIALIZE_REQUESTS and stricter, `threads` for PARALLEL; for
// SERIALIZE_ALL_REQUESTS every plugin call also takes the host-wide lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "ipc/layout.h"
#include "ipc/ring.h"
#include "ipc/shm-region.h"
#include "pluginhost/abi-context.h"
#include "pluginhost/plugin.h"

namespace nbdcage::host {

class HandleServer {
 public:
  // Takes ownership of the plugin handle `h`; closes it on destruction.
  HandleServer(Plugin& plugin, void* h, const ExportAnswers& answers, Connection connection,
               ipc::ShmRegion region, ipc::DoorbellWaiter submitBell, ipc::Doorbell completeBell, unsigned workers,
               std::mutex* serializeAll);
  ~HandleServer();
  HandleServer(const HandleServer&) = delete;
  HandleServer& operator=(const HandleServer&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::microseconds kHelpAfter{500};
  static constexpr unsigned kQuietTicks = 200;  // 100 ms without work: stop watching

  void workerLoop(unsigned worker);
  bool nextRequest(unsigned worker, ipc::SubmitDesc& out);  // false: stop
  void waitForRing() const;
  void growPool();
  Clock::time_point oldestCallStart() const;
  ipc::CompleteDesc execute(const ipc::SubmitDesc& d);
  int dataCall(const ipc::SubmitDesc& d, uint8_t* buf, uint32_t& extentsOut);
  int withFua(uint16_t flags, int (Plugin::*op)(void*, uint32_t, uint64_t, uint32_t), uint32_t count,
              uint64_t offset, uint32_t pluginFlags);

  Plugin& plugin_;
  void* handle_;
  ExportAnswers answers_;
  const Connection connection_;  // what nbdkit_export_name / nbdkit_peer_* answer
  ipc::ShmRegion region_;
  ipc::DoorbellWaiter submitBell_;
  ipc::Doorbell completeBell_;
  // Wakes the worker asleep on submitBell_ when the handle closes: the
  // frontend owns that bell's ringing end, we only wait on it.
  ipc::DoorbellPipe stopPipe_ = ipc::DoorbellPipe::create();
  ipc::Doorbell stopBell_{kj::mv(stopPipe_.ringEnd)};
  ipc::Region* shared_;
  uint8_t* data_;
  uint64_t dataSize_;
  ipc::RingConsumer<ipc::SubmitDesc> submit_;
  ipc::RingProducer<ipc::CompleteDesc> complete_;
  std::mutex consumeLock_;  // guards submit_ and the scheduling state below
  std::condition_variable moreWork_;
  bool polling_ = false;                  // a worker sleeps on the doorbell
  bool watching_ = false;                 // a worker watches a backlog
  unsigned idleWorkers_ = 0;              // workers asleep on moreWork_
  unsigned busy_ = 0;                     // workers inside a plugin call
  std::vector<Clock::time_point> started_;  // per worker: call start, or epoch
  std::mutex produceLock_;  // guards complete_
  std::mutex* serializeAll_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> disconnect_{0};  // nbdkit_disconnect(): 1 no new requests, 2 drop the client
  std::vector<std::thread> workers_;
};

}  // namespace nbdcage::host
