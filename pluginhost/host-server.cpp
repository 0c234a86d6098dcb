#include "pluginhost/host-server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <kj/debug.h>

#include <memory>
#include <system_error>
#include <thread>
#include <type_traits>

#include "pluginhost/abi-context.h"
#include "pluginhost/handle-server.h"

namespace nbdcage::host {

namespace schema = ipc::schema;

namespace {

// Runs `work` on a thread of its own and resolves with what it returns (or
// rejects with what it throws): plugin code never runs on the RPC thread,
// so a callback that blocks stalls its own caller only.  `calls` counts
// the thread until it ends (the server waits for them all).  No thread: an
// OVERLOADED error for this call; the host and its other clients go on.
template <typename T, typename Work>
kj::Promise<T> offLoop(const std::shared_ptr<OpenState>& calls, Work work) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<T>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<T>>>(kj::mv(paf.fulfiller));
  auto job = std::make_shared<Work>(std::move(work));
  {
    std::lock_guard lock(calls->lock);
    ++calls->running;
  }
  auto leave = [calls]() {
    std::lock_guard lock(calls->lock);
    if (--calls->running == 0) calls->idle.notify_all();
  };
  try {
    std::thread([leave, fulfiller, job]() {
      if constexpr (std::is_void_v<T>) {
        KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { (*job)(); })) {
          (*fulfiller)->reject(kj::mv(*e));
        } else {
          (*fulfiller)->fulfill();
        }
      } else {
        kj::Maybe<T> value;
        KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { value = (*job)(); })) {
          (*fulfiller)->reject(kj::mv(*e));
        } else KJ_IF_MAYBE(v, value) {
          (*fulfiller)->fulfill(kj::mv(*v));
        }
      }
      leave();
    }).detach();
  } catch (const std::system_error& e) {
    leave();
    kj::throwFatalException(KJ_EXCEPTION(OVERLOADED, "the plugin host has no thread for this call", e.what()));
  }
  return kj::mv(paf.promise);
}

// Owns a HandleServer; the plugin handle closes when the frontend calls
// close() or drops the capability, whichever comes first, on a thread of
// its own (the workers finish, then the plugin's close runs).
class HandleImpl final : public schema::Handle::Server {
 public:
  // `gated`: the plugin handle holds opens->gate (serialized connections)
  // and releases it once closed.
  HandleImpl(kj::Own<HandleServer> server, std::shared_ptr<OpenState> opens, bool gated)
      : server_(kj::mv(server)), opens_(gated ? opens : nullptr), calls_(std::move(opens)) {}
  // Dropped unclosed: the host is being torn down (the frontend closes
  // every handle it gives up), so the plugin is closed here, before it is
  // unloaded.
  ~HandleImpl() {
    server_ = nullptr;
    if (opens_) opens_->gate.release();
  }

 protected:
  kj::Promise<void> close(CloseContext) override { return closeHandle(); }

 private:
  kj::Promise<void> closeHandle() {
    if (!server_) return kj::READY_NOW;
    // shared_ptr: a std::thread's function may not hold a kj::Own.
    auto closing = std::make_shared<kj::Own<HandleServer>>(kj::mv(server_));
    auto gate = std::move(opens_);
    auto work = [closing, gate]() {
      *closing = nullptr;
      if (gate) gate->gate.release();
    };
    try {
      return offLoop<void>(calls_, work);  // a copy: the fallback below needs its own
    } catch (const kj::Exception&) {  // no thread: closed here, the one way left
      work();
      return kj::READY_NOW;
    }
  }

  kj::Own<HandleServer> server_;
  std::shared_ptr<OpenState> opens_;  // set while it holds the gate
  std::shared_ptr<OpenState> calls_;
};

kj::AutoCloseFd dupFd(kj::Maybe<int> fd, const char* what) {
  int raw = -1;
  KJ_IF_MAYBE(f, fd) { raw = *f; }
  KJ_REQUIRE(raw >= 0, "open: a ring descriptor is missing", what);
  int copy;
  KJ_SYSCALL(copy = fcntl(raw, F_DUPFD_CLOEXEC, 3), what);
  return kj::AutoCloseFd(copy);
}

void fillExport(schema::ExportInfo::Builder e, const ExportAnswers& a) {
  e.setSize(a.size);
  e.setCanWrite(a.canWrite);
  e.setCanFlush(a.canFlush);
  e.setIsRotational(a.isRotational);
  e.setCanTrim(a.canTrim);
  e.setCanZero(a.canZero);
  e.setCanFua(a.canFua);
  e.setCanMultiConn(a.canMultiConn);
  e.setCanExtents(a.canExtents);
  e.setCanCache(a.canCache);
  e.setCanFastZero(a.canFastZero);
  e.setBlockMin(a.blockMin);
  e.setBlockPreferred(a.blockPreferred);
  e.setBlockMax(a.blockMax);
  e.setDescription(a.description);
}

[[noreturn]] void failWithPluginError(const char* what) {
  std::string message = takeThreadErrorMessage();
  if (message.empty()) message = std::string(what) + " failed";
  kj::throwFatalException(KJ_EXCEPTION(FAILED, message));
}

}  // namespace

HostServer::HostServer(Plugin& plugin, HostOptions options, kj::UnixEventPort& events)
    : plugin_(plugin),
      options_(options),
      shutdownObserver_(events, shutdownPipe_.waitEnd.get(), kj::UnixEventPort::FdObserver::OBSERVE_READ),
      shutdownRequested_(shutdownObserver_.whenBecomesReadable().fork()) {
  setShutdownHook([this] { shutdownBell_.ring(); });
  if (shutdownRequested()) shutdownBell_.ring();  // asked during configuration
}

HostServer::~HostServer() {
  setShutdownHook(nullptr);
  std::unique_lock lock(opens_->lock);
  opens_->idle.wait(lock, [this] { return opens_->running == 0; });
}

kj::Promise<void> HostServer::waitForShutdown(WaitForShutdownContext) { return shutdownRequested_.addBranch(); }

kj::Promise<void> HostServer::serverStopping(ServerStoppingContext) {
  host::serverStopping();
  return kj::READY_NOW;
}

kj::Promise<void> HostServer::hello(HelloContext context) {
  auto results = context.getResults();
  results.setProtocolVersion(schema::PROTOCOL_VERSION);
  auto info = results.initPlugin();
  info.setName(plugin_.name());
  info.setLongname(plugin_.longname());
  info.setVersion(plugin_.version());
  info.setThreadModel(static_cast<uint8_t>(plugin_.threadModel()));
  info.setApiVersion(static_cast<uint8_t>(plugin_.apiVersion()));
  return kj::READY_NOW;
}

namespace {

// What a plugin's open and can_* calls produced, carried from the thread
// that made them back to the RPC loop.  It owns the plugin handle (and the
// gate, for serialized connections) until take(): dropped unused (the
// frontend gave up, or serving it failed), it closes them.
class Opened {
 public:
  Opened(Plugin& plugin, std::shared_ptr<OpenState> opens, bool gated, void* handle, ExportAnswers answers)
      : plugin_(&plugin), opens_(std::move(opens)), gated_(gated), handle_(handle), answers(std::move(answers)) {}
  Opened(Opened&& o) noexcept
      : plugin_(o.plugin_), opens_(std::move(o.opens_)), gated_(o.gated_), handle_(o.handle_),
        answers(std::move(o.answers)) {
    o.handle_ = nullptr;
  }
  Opened& operator=(Opened&&) = delete;
  ~Opened() {
    if (handle_ == nullptr) return;
    plugin_->close(handle_);
    if (gated_) opens_->gate.release();
  }
  void* handle() const { return handle_; }
  // The handle now belongs to a HandleServer (and the gate to its HandleImpl).
  void take() { handle_ = nullptr; }

 private:
  Plugin* plugin_;
  std::shared_ptr<OpenState> opens_;
  bool gated_;
  void* handle_;

 public:
  ExportAnswers answers;
};

// The export name and who the client is, checked: the frontend is not
// trusted with more than a sockaddr's worth of address.
Connection readConnection(schema::PluginHost::OpenParams::Reader params) {
  Connection c;
  c.exportName = params.getExportName();
  auto peer = params.getPeer();
  auto address = peer.getAddress();
  KJ_REQUIRE(address.size() <= sizeof(sockaddr_storage), "open: peer address too long", address.size());
  c.peerAddress.assign(address.begin(), address.end());
  if (peer.getHasCredentials()) {
    c.hasCredentials = true;
    c.pid = peer.getPid();
    c.uid = peer.getUid();
    c.gid = peer.getGid();
  }
  return c;
}

// On an open thread: the plugin's open and can_* calls, whose answer goes
// back to the RPC loop.  If the frontend gave up meanwhile, the value is
// dropped there, and that closes the handle.
Opened runOpen(Plugin& plugin, const std::shared_ptr<OpenState>& opens, const Connection& connection, bool readonly,
               bool gated) {
  if (gated) opens->gate.acquire();
  setThreadConnection(&connection);
  void* handle = plugin.open(readonly);
  ExportAnswers answers;
  std::string failure;
  if (handle == nullptr) {
    failure = takeThreadErrorMessage();
    if (failure.empty()) failure = "open failed";
  } else if (!plugin.answers(handle, readonly, answers)) {
    failure = takeThreadErrorMessage();
    if (failure.empty()) failure = "querying the export failed";
    plugin.close(handle);
  }
  setThreadConnection(nullptr);
  if (!failure.empty()) {
    if (gated) opens->gate.release();
    kj::throwFatalException(KJ_EXCEPTION(FAILED, failure));
  }
  return Opened(plugin, opens, gated, handle, std::move(answers));
}

}  // namespace

// The plugin's open and can_* calls may block (a network plugin connects
// in open), so they run on a thread of their own while the RPC loop goes
// on serving other connections.
kj::Promise<void> HostServer::open(OpenContext context) {
  auto params = context.getParams();
  auto rings = params.getRings();
  auto fds = kj::heapArrayBuilder<kj::Promise<kj::Maybe<int>>>(3);
  fds.add(rings.getRegion().getFd());
  fds.add(rings.getSubmitBell().getFd());
  fds.add(rings.getCompleteBell().getFd());
  return kj::joinPromises(fds.finish()).then([this, context](kj::Array<kj::Maybe<int>> got) mutable {
    auto params = context.getParams();
    uint64_t regionSize = params.getRings().getRegionSize();
    KJ_REQUIRE(regionSize > ipc::dataAreaOffset() && regionSize <= (uint64_t{1} << 32), "bad region size",
               regionSize);
    auto region = kj::heap<ipc::ShmRegion>(ipc::ShmRegion::map(dupFd(got[0], "region"), regionSize));
    auto submitBell = kj::heap<ipc::DoorbellWaiter>(dupFd(got[1], "submitBell"), false);
    auto completeBell = kj::heap<ipc::Doorbell>(dupFd(got[2], "completeBell"));
    Connection connection = readConnection(params);
    bool readonly = options_.readonly || params.getReadonly();

    bool gated = plugin_.threadModel() == NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS;
    // The thread uses only what outlives it: the plugin and the shared state.
    auto opened = offLoop<Opened>(opens_, [&plugin = plugin_, opens = opens_, connection, readonly, gated]() {
      return runOpen(plugin, opens, connection, readonly, gated);
    });
    return opened.then([this, context, connection = std::move(connection), gated, region = kj::mv(region),
                             submitBell = kj::mv(submitBell), completeBell = kj::mv(completeBell)](Opened o) mutable {
      const ExportAnswers& a = o.answers;
      int model = plugin_.threadModel();
      unsigned workers = model >= NBDKIT_THREAD_MODEL_PARALLEL ? options_.threads : 1;
      std::mutex* serialize = model <= NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS ? &serializeAll_ : nullptr;
      // If this throws, `o` still owns the handle and closes it.
      auto server = kj::heap<HandleServer>(plugin_, o.handle(), a, connection, kj::mv(*region), kj::mv(*submitBell),
                                           kj::mv(*completeBell), workers, serialize);
      o.take();
      auto results = context.getResults();
      results.setHandle(kj::heap<HandleImpl>(kj::mv(server), opens_, gated));
      fillExport(results.initExport(), a);
    });
  });
}

kj::Promise<void> HostServer::listExports(ListExportsContext context) {
  using List = std::vector<std::pair<std::string, std::string>>;
  bool readonly = options_.readonly || context.getParams().getReadonly();
  return offLoop<List>(opens_, [&plugin = plugin_, readonly]() {
    List list;
    if (!plugin.listExports(readonly, list)) failWithPluginError("list_exports");
    return list;
  }).then([context](List list) mutable {
    auto out = context.getResults().initExports(static_cast<unsigned>(list.size()));
    for (unsigned i = 0; i < list.size(); ++i) {
      out[i].setName(list[i].first);
      out[i].setDescription(list[i].second);
    }
  });
}

kj::Promise<void> HostServer::defaultExport(DefaultExportContext context) {
  bool readonly = options_.readonly || context.getParams().getReadonly();
  return offLoop<std::string>(opens_, [&plugin = plugin_, readonly]() {
    std::string name;
    if (!plugin.defaultExport(readonly, name)) failWithPluginError("default_export");
    return name;
  }).then([context](std::string name) mutable { context.getResults().setName(name); });
}

kj::Promise<void> HostServer::ping(PingContext) { return kj::READY_NOW; }

}  // namespace nbdcage::host
