#include "pluginhost/host-server.h"

#include <fcntl.h>
#include <kj/debug.h>

#include <memory>
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
  // `gate`: released once the plugin handle is closed (serialized
  // connections), or null.
  HandleImpl(kj::Own<HandleServer> server, ConnectionGate* gate) : server_(kj::mv(server)), gate_(gate) {}
  ~HandleImpl() { closeHandle(); }

 protected:
  kj::Promise<void> close(CloseContext) override {
    closeHandle();
    return kj::READY_NOW;
  }

 private:
  void closeHandle() {
    server_ = nullptr;
    if (gate_) gate_->release();
    gate_ = nullptr;
  }

  kj::Own<HandleServer> server_;
  ConnectionGate* gate_;
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
      shutdownObserver_(events, shutdownBell_.fd(), kj::UnixEventPort::FdObserver::OBSERVE_READ),
      shutdownRequested_(shutdownObserver_.whenBecomesReadable().fork()) {
  setShutdownHook([this] { shutdownBell_.ring(); });
  if (shutdownRequested()) shutdownBell_.ring();  // asked during configuration
}

HostServer::~HostServer() { setShutdownHook(nullptr); }

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
// that made them back to the RPC loop.
struct Opened {
  void* handle = nullptr;
  ExportAnswers answers;
};

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
    auto submitBell = kj::heap<ipc::Doorbell>(dupFd(got[1], "submitBell"));
    auto completeBell = kj::heap<ipc::Doorbell>(dupFd(got[2], "completeBell"));
    std::string exportName = params.getExportName();
    bool readonly = options_.readonly || params.getReadonly();

    auto paf = kj::newPromiseAndCrossThreadFulfiller<Opened>();
    auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<Opened>>>(kj::mv(paf.fulfiller));
    ConnectionGate* gate = plugin_.threadModel() == NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS ? &gate_ : nullptr;
    std::thread([this, exportName, readonly, fulfiller, gate]() {
      if (gate) gate->acquire();
      setThreadExportName(exportName.c_str());
      Opened o;
      o.handle = plugin_.open(readonly);
      std::string failure;
      if (o.handle == nullptr) {
        failure = takeThreadErrorMessage();
        if (failure.empty()) failure = "open failed";
      } else if (!plugin_.answers(o.handle, readonly, o.answers)) {
        failure = takeThreadErrorMessage();
        if (failure.empty()) failure = "querying the export failed";
        plugin_.close(o.handle);
      }
      setThreadExportName(nullptr);
      if (!failure.empty()) {
        if (gate) gate->release();
        (*fulfiller)->reject(KJ_EXCEPTION(FAILED, failure));
      } else if ((*fulfiller)->isWaiting()) {
        (*fulfiller)->fulfill(kj::mv(o));
      } else {
        plugin_.close(o.handle);  // the frontend gave up meanwhile
        if (gate) gate->release();
      }
    }).detach();

    return paf.promise.then([this, context, exportName, gate, region = kj::mv(region),
                             submitBell = kj::mv(submitBell), completeBell = kj::mv(completeBell)](Opened o) mutable {
      const ExportAnswers& a = o.answers;
      int model = plugin_.threadModel();
      unsigned workers = model >= NBDKIT_THREAD_MODEL_PARALLEL ? options_.threads : 1;
      std::mutex* serialize = model <= NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS ? &serializeAll_ : nullptr;
      auto server = kj::heap<HandleServer>(plugin_, o.handle, a, exportName, kj::mv(*region), kj::mv(*submitBell),
                                           kj::mv(*completeBell), workers, serialize);
      auto results = context.getResults();
      results.setHandle(kj::heap<HandleImpl>(kj::mv(server), gate));
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
