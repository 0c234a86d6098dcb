#include "pluginhost/handle-server.h"

#include <kj/debug.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

#include "pluginhost/abi-context.h"

namespace nbdcage::host {

using ipc::CompleteDesc;
using ipc::Op;
using ipc::RingStatus;
using ipc::SubmitDesc;

HandleServer::HandleServer(Plugin& plugin, void* h, const ExportAnswers& answers, Connection connection,
                           ipc::ShmRegion region, ipc::DoorbellWaiter submitBell, ipc::Doorbell completeBell,
                           unsigned workers, std::mutex* serializeAll)
    : plugin_(plugin),
      handle_(h),
      answers_(answers),
      connection_(std::move(connection)),
      region_(std::move(region)),
      submitBell_(std::move(submitBell)),
      completeBell_(std::move(completeBell)),
      shared_(reinterpret_cast<ipc::Region*>(region_.data())),
      data_(region_.data() + ipc::dataAreaOffset()),
      dataSize_(region_.size() - ipc::dataAreaOffset()),
      submit_(shared_->submit),
      complete_(shared_->complete),
      serializeAll_(serializeAll) {
  KJ_REQUIRE(shared_->header.magic == ipc::kRegionMagic && shared_->header.version == ipc::kLayoutVersion,
             "shared region has a wrong magic or layout version");
  // Workers start on demand (growPool), up to `workers`: a fast plugin is
  // served by one or two threads, and 1000 idle connections do not cost
  // 16,000 threads.  Without even one, the open fails (the caller says why).
  started_.resize(workers);
  workers_.reserve(workers);
  workers_.emplace_back([this] { workerLoop(0); });
}

HandleServer::~HandleServer() {
  {
    std::lock_guard lock(consumeLock_);
    stopping_.store(true);
    moreWork_.notify_all();
  }
  stopBell_.ring();
  for (auto& t : workers_) t.join();
  setThreadConnection(&connection_);
  plugin_.close(handle_);
  setThreadConnection(nullptr);
}

// Who takes the next descriptor (all under consumeLock_):
//  - a worker that just finished a call takes the next one at once, so a
//    busy ring drains without any wake-up;
//  - when the ring is empty, one worker (the poller) sleeps on the doorbell;
//  - while there is activity, one worker (the watcher) wakes every
//    kHelpAfter and takes a descriptor from the backlog if the oldest call
//    in progress has run that long, handing the watch to an idle worker;
//  - everyone else sleeps on moreWork_.
// A fast plugin is thus served by one thread without hand-offs, and a slow
// one gains a thread per kHelpAfter of backlog, up to the pool size.
bool HandleServer::nextRequest(unsigned worker, SubmitDesc& out) {
  std::unique_lock lock(consumeLock_);
  // `fresh`: this worker just finished a call (or just started), so it may
  // take the next descriptor at once.  A worker that has waited must not:
  // it only steps in when nobody else is working, or as the watcher.
  bool fresh = true;
  if (started_[worker] != Clock::time_point{}) {
    started_[worker] = Clock::time_point{};
    --busy_;
  }
  bool watching = false;
  unsigned quietTicks = 0;
  for (;;) {
    if (stopping_.load()) return false;
    auto now = Clock::now();
    if (fresh || busy_ == 0 || (watching && now - oldestCallStart() >= kHelpAfter)) {
      RingStatus st = submit_.pop(out);
      if (st == RingStatus::kOk) {
        if (watching) {
          watching_ = false;
          if (idleWorkers_ > 0) moreWork_.notify_one();  // hand over the watch
          else growPool();                               // to a new worker
        }
        started_[worker] = now;
        ++busy_;
        // More is waiting and nobody will watch it while we are busy.
        if (!watching_ && idleWorkers_ == 0 && submit_.pending()) growPool();
        return true;
      }
      if (st == RingStatus::kCorrupt) {
        nbdkit_error("submit ring indices corrupted; this handle stops serving");
        stopping_.store(true);
        moreWork_.notify_all();
        return false;
      }
    }
    fresh = false;
    bool pending = submit_.pending();
    if (watching) {
      quietTicks = busy_ == 0 && !pending ? quietTicks + 1 : 0;
      if (quietTicks < kQuietTicks) {
        moreWork_.wait_for(lock, kHelpAfter);
        continue;
      }
      watching_ = watching = false;  // long quiet: sleep untimed below
    } else if (!pending && !polling_) {
      polling_ = true;
      bool sleep = submit_.prepareToSleep();  // under the lock: it reads our head index
      lock.unlock();
      if (sleep) waitForRing();
      lock.lock();
      submit_.awake();
      polling_ = false;
      // Work arrived.  Make sure someone watches while it is being done.
      if (!watching_) {
        if (idleWorkers_ > 0) moreWork_.notify_one();
        else growPool();
      }
      continue;
    } else if (!watching_ && (pending || busy_ > 0)) {
      watching_ = watching = true;
      quietTicks = 0;
      continue;
    }
    ++idleWorkers_;
    moreWork_.wait(lock);
    --idleWorkers_;
  }
}

// One more worker, if the pool may grow (under consumeLock_).  A thread the
// system will not give us (a pids or process limit) is not an error: the
// handle goes on with the workers it has.
void HandleServer::growPool() {
  if (stopping_.load() || workers_.size() >= started_.size()) return;
  try {
    unsigned i = static_cast<unsigned>(workers_.size());
    workers_.emplace_back([this, i] { workerLoop(i); });
  } catch (const std::system_error& e) {
    nbdkit_error("cannot start another worker thread (%s); this handle goes on with %zu", e.what(), workers_.size());
    started_.resize(workers_.size());  // stop trying
  }
}

// Until the frontend rings, or the handle closes.
void HandleServer::waitForRing() const {
  struct pollfd fds[2] = {{submitBell_.fd(), POLLIN, 0}, {stopPipe_.waitEnd.get(), POLLIN, 0}};
  int r;
  do {
    r = poll(fds, 2, -1);
  } while (r < 0 && errno == EINTR);
  if (fds[0].revents & POLLIN) submitBell_.wait();
}

HandleServer::Clock::time_point HandleServer::oldestCallStart() const {
  auto oldest = Clock::time_point::max();
  for (auto t : started_)
    if (t != Clock::time_point{} && t < oldest) oldest = t;
  return oldest;
}

void HandleServer::workerLoop(unsigned worker) {
  setThreadConnection(&connection_);
  setThreadDisconnect(&disconnect_);
  SubmitDesc d;
  while (nextRequest(worker, d)) {
    // After nbdkit_disconnect(0) requests are failed without the plugin
    // (ESHUTDOWN, as nbdkit); after nbdkit_disconnect(1) the frontend
    // drops the client at the first answer it sees.
    int before = disconnect_.load();
    CompleteDesc c{};
    c.tag = d.tag;
    if (before == 0) c = execute(d);
    else c.error = ESHUTDOWN;
    if (disconnect_.load() == 2) c.error = ipc::kErrorDisconnectNow;
    {
      std::lock_guard lock(produceLock_);
      // Cannot be full: the frontend never has more requests in flight
      // than the ring holds.
      if (complete_.push(c) != RingStatus::kOk) {
        nbdkit_error("complete ring full or corrupted; this handle stops serving");
        stopping_.store(true);
      }
    }
    if (complete_.consumerNeedsWakeup()) completeBell_.ring();
  }
}

CompleteDesc HandleServer::execute(const SubmitDesc& d) {
  CompleteDesc c{};
  c.tag = d.tag;
  // The frontend is trusted, but a wrong slice must never become a wild
  // write into our memory, so the bounds are checked again here.
  bool bufOk = d.bufLen <= dataSize_ && d.bufOffset <= dataSize_ - d.bufLen;
  bool rangeOk = d.count <= answers_.size && d.offset <= answers_.size - d.count;
  if (!bufOk || !rangeOk) {
    c.error = EINVAL;
    return c;
  }
  uint32_t extents = 0;
  if (serializeAll_) {
    std::lock_guard lock(*serializeAll_);
    c.error = dataCall(d, data_ + d.bufOffset, extents);
  } else {
    c.error = dataCall(d, data_ + d.bufOffset, extents);
  }
  c.extents = extents;
  return c;
}

int HandleServer::withFua(uint16_t flags, int (Plugin::*op)(void*, uint32_t, uint64_t, uint32_t), uint32_t count,
                          uint64_t offset, uint32_t pluginFlags) {
  bool fua = (flags & ipc::kFlagFua) && answers_.canFua != NBDKIT_FUA_NONE;
  if (fua && answers_.canFua == NBDKIT_FUA_NATIVE && plugin_.apiVersion() == 2) pluginFlags |= NBDKIT_FLAG_FUA;
  int err = (plugin_.*op)(handle_, count, offset, pluginFlags);
  if (err == 0 && fua && !(pluginFlags & NBDKIT_FLAG_FUA)) err = plugin_.flush(handle_, 0);
  return err;
}

int HandleServer::dataCall(const SubmitDesc& d, uint8_t* buf, uint32_t& extentsOut) {
  uint32_t flags = 0;
  if (d.flags & ipc::kFlagMayTrim) flags |= NBDKIT_FLAG_MAY_TRIM;
  if (d.flags & ipc::kFlagReqOne) flags |= NBDKIT_FLAG_REQ_ONE;
  if (d.flags & ipc::kFlagFastZero) flags |= NBDKIT_FLAG_FAST_ZERO;
  switch (static_cast<Op>(d.op)) {
    case Op::kRead:
      if (d.count > d.bufLen) return EINVAL;
      return plugin_.pread(handle_, buf, d.count, d.offset, 0);
    case Op::kWrite: {
      if (d.count > d.bufLen) return EINVAL;
      if (!answers_.canWrite) return EROFS;
      bool fua = (d.flags & ipc::kFlagFua) && answers_.canFua != NBDKIT_FUA_NONE;
      bool native = fua && answers_.canFua == NBDKIT_FUA_NATIVE && plugin_.apiVersion() == 2;
      int err = plugin_.pwrite(handle_, buf, d.count, d.offset, native ? NBDKIT_FLAG_FUA : 0);
      if (err == 0 && fua && !native) err = plugin_.flush(handle_, 0);
      return err;
    }
    case Op::kFlush:
      return plugin_.flush(handle_, 0);
    case Op::kTrim:
      if (!answers_.canTrim) return EINVAL;
      return withFua(d.flags, &Plugin::trim, d.count, d.offset, 0);
    case Op::kZero:
      if (!answers_.canZero) return EINVAL;
      return withFua(d.flags, &Plugin::zero, d.count, d.offset, flags);
    case Op::kCache:
      return plugin_.cache(handle_, d.count, d.offset, 0);
    case Op::kExtents: {
      std::vector<Extent> list;
      int err = plugin_.extents(handle_, d.count, d.offset, flags, list);
      if (err) return err;
      size_t room = d.bufLen / sizeof(ipc::ExtentEntry);
      size_t n = std::min(room, list.size());
      for (size_t i = 0; i < n; ++i) {
        ipc::ExtentEntry e{list[i].length, list[i].type, 0};
        std::memcpy(buf + i * sizeof e, &e, sizeof e);
      }
      extentsOut = static_cast<uint32_t>(n);
      return n == 0 ? EIO : 0;
    }
  }
  return EINVAL;
}

}  // namespace nbdcage::host
