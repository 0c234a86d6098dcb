@0xae18b057f3a71d30;
# The control-plane contract between the nbdcage frontend and one
# nbdcage-pluginhost process.  It is the only thing the two share besides the
# ring layout in ipc/layout.h.
#
# Trust: the frontend is the parent and is trusted by the host.  The host runs
# foreign plugin code and is NOT trusted by the frontend: every value it
# returns is validated, and the frontend accepts no file descriptors from it
# (its TwoPartyVatNetwork allows 0 fds per message).  Ordinals are
# append-only; bump `protocolVersion` on any incompatible change.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("nbdcage::ipc::schema");

const protocolVersion :UInt32 = 2;  # 2: doorbells are pipes (RingSetup)

interface FileDescriptor {
  # Carries exactly one file descriptor from the frontend to the host
  # (Capability::Server::getFd).  It has no methods.
}

struct PluginInfo {
  name @0 :Text;               # the plugin's short name, e.g. "memory"
  longname @1 :Text;
  version @2 :Text;
  threadModel @3 :UInt8;       # effective model, NBDKIT_THREAD_MODEL_*
  apiVersion @4 :UInt8;        # 1 or 2
}

struct ExportInfo {
  # Answers of the plugin's can_* and get_size callbacks for one handle.
  # Tri-state callbacks (can_fua, can_cache) use 0 none, 1 emulate, 2 native.
  size @0 :UInt64;             # bytes
  canWrite @1 :Bool;
  canFlush @2 :Bool;
  isRotational @3 :Bool;
  canTrim @4 :Bool;
  canZero @5 :Bool;
  canFua @6 :UInt8;
  canMultiConn @7 :Bool;
  canExtents @8 :Bool;
  canCache @9 :UInt8;
  canFastZero @10 :Bool;
  blockMin @11 :UInt32;        # bytes; all three 0 = the plugin has no opinion
  blockPreferred @12 :UInt32;
  blockMax @13 :UInt32;
  description @14 :Text;       # empty = none
}

struct ExportEntry {
  name @0 :Text;
  description @1 :Text;
}

struct RingSetup {
  # The frontend creates the shared region and both doorbells, so that it
  # never has to trust a descriptor coming from the host.
  region @0 :FileDescriptor;   # memfd holding ipc/layout.h's Region
  regionSize @1 :UInt64;       # bytes; the host maps exactly this much
  submitBell @2 :FileDescriptor;   # read end of a pipe the frontend rings for the host
  completeBell @3 :FileDescriptor; # write end of a pipe the host rings for the frontend
}

struct Peer {
  # Who the client is, as the frontend's kernel saw its socket.  The host
  # only hands it to the plugin (nbdkit_peer_*) and trusts it no further.
  address @0 :Data;          # a struct sockaddr as getpeername gave it; empty: unknown
  hasCredentials @1 :Bool;   # a Unix socket: SO_PEERCRED below
  pid @2 :Int64;
  uid @3 :Int64;
  gid @4 :Int64;
}

interface Handle {
  # One plugin handle (nbdkit's per-connection `void *handle`), served by the
  # host's workers from the rings given at open.  Block I/O never travels
  # through this interface.
  close @0 () -> ();
  # Stops the workers after the requests already submitted, then calls the
  # plugin's close.  Dropping the capability does the same.
}

interface PluginHost {
  hello @0 (protocolVersion :UInt32) -> (protocolVersion :UInt32, plugin :PluginInfo);
  # The first call.  The frontend refuses a host whose version differs.

  open @1 (exportName :Text, readonly :Bool, rings :RingSetup, peer :Peer)
       -> (handle :Handle, export :ExportInfo);
  # Runs the plugin's open and every can_* once; then the host's workers
  # start serving the rings.  A plugin failure is an RPC exception whose
  # description is the plugin's error message.

  listExports @2 (readonly :Bool) -> (exports :List(ExportEntry));
  # The plugin's list_exports, or just the default export.

  defaultExport @3 (readonly :Bool) -> (name :Text);

  ping @4 () -> ();
  # Health check; answered by the RPC thread.

  waitForShutdown @5 () -> ();
  # Returns when the plugin has asked the server to shut down
  # (nbdkit_shutdown).  The frontend keeps one call outstanding per host and
  # then stops as if it had received SIGTERM.

  serverStopping @6 () -> ();
  # The frontend has begun an orderly shutdown: from now on the plugin's
  # nbdkit_nanosleep returns early with ESHUTDOWN (as in nbdkit), so a slow
  # request in flight ends instead of holding the shutdown up.
}
