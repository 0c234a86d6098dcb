#include "pluginhost/host-server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <kj/debug.h>

#include <memory>
#include <system_error>
#include <thread>

#include "pluginhost/abi-context.h"
#include "pluginhost/handle-server.h"

namespace nbdcage::host {

namespace schema = ipc::schema;

namespace {

// Owns a HandleServer; the plugin handle closes when the frontend calls
// close() or drops the capability, whichever comes first.
class HandleImpl final : public schema::Handle::Server {
 public:
  // `gated`: the plugin handle holds opens->gate (serialized connections)
  // and releases it once closed.
  HandleImpl(kj::Own<HandleServer> server, std::shared_ptr<OpenState> opens, bool gated)
      : server_(kj::mv(server)), opens_(gated ? std::move(opens) : nullptr) {}
  ~HandleImpl() { closeHandle(); }

 protected:
  kj::Promise<void> close(CloseContext) override {
    closeHandle();
    return kj::READY_NOW;
  }

 private:
  void closeHandle() {
    server_ = nullptr;
    if (opens_) opens_->gate.release();
    opens_ = nullptr;
  }

  kj::Own<HandleServer> server_;
  std::shared_ptr<OpenState> opens_;
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

// On an open thread: the plugin's open and can_* calls, then the answer to
// the RPC loop.  If the frontend gave up meanwhile, the handle is closed.
void runOpen(Plugin& plugin, const std::shared_ptr<OpenState>& opens, const Connection& connection, bool readonly,
             kj::CrossThreadPromiseFulfiller<Opened>& fulfiller, bool gated) {
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
    fulfiller.reject(KJ_EXCEPTION(FAILED, failure));
    return;
  }
  // If nobody waits any more, the value is dropped and closes the handle.
  fulfiller.fulfill(Opened(plugin, opens, gated, handle, std::move(answers)));
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

    auto paf = kj::newPromiseAndCrossThreadFulfiller<Opened>();
    auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<Opened>>>(kj::mv(paf.fulfiller));
    bool gated = plugin_.threadModel() == NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS;
    {
      std::lock_guard lock(opens_->lock);
      ++opens_->running;
    }
    // The thread uses only what outlives it: the plugin and the shared state.
    try {
      std::thread([&plugin = plugin_, opens = opens_, connection, readonly, fulfiller, gated]() {
        runOpen(plugin, opens, connection, readonly, **fulfiller, gated);
        std::lock_guard lock(opens->lock);
        if (--opens->running == 0) opens->idle.notify_all();
      }).detach();
    } catch (const std::system_error& e) {
      // No thread for this open (a pids limit): this client is refused,
      // saying why; the host and its other clients go on.
      std::lock_guard lock(opens_->lock);
      if (--opens_->running == 0) opens_->idle.notify_all();
      kj::throwFatalException(KJ_EXCEPTION(OVERLOADED, "the plugin host has no thread for another open", e.what()));
    }

    return paf.promise.then([this, context, connection = std::move(connection), gated, region = kj::mv(region),
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
  std::vector<std::pair<std::string, std::string>> list;
  if (!plugin_.listExports(options_.readonly || context.getParams().getReadonly(), list))
    failWithPluginError("list_exports");
  auto out = context.getResults().initExports(static_cast<unsigned>(list.size()));
  for (unsigned i = 0; i < list.size(); ++i) {
    out[i].setName(list[i].first);
    out[i].setDescription(list[i].second);
  }
  return kj::READY_NOW;
}

kj::Promise<void> HostServer::defaultExport(DefaultExportContext context) {
  std::string name;
  if (!plugin_.defaultExport(options_.readonly || context.getParams().getReadonly(), name))
    failWithPluginError("default_export");
  context.getResults().setName(name);
  return kj::READY_NOW;
}

kj::Promise<void> HostServer::ping(PingContext) { return kj::READY_NOW; }

}  // namespace nbdcage::host
