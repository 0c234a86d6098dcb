// libFuzzer target: a hostile plugin host against the real frontend.  The
// input is a script of what such a host does: write arbitrary bytes over
// the shared rings, post plausible or absurd completions, ring the bell,
// die; and RPC answers (an open's ExportInfo, a list of exports) made of
// arbitrary Cap'n Proto words.  The frontend's side runs for real: the
// RemoteHandle submits, drains and validates; validate.h checks answers.
//
// Must hold whatever the bytes: no crash, no sanitizer report, every
// request submitted completes exactly once (with 0 or an errno), and
// nothing is left in flight once the host is declared dead.
//
//   -Dfuzzing=true (clang): tests/fuzz/fuzz-host CORPUS_DIR   (libFuzzer)
//   always: fuzz-host-replay FILE...   (the suite replays tests/fuzz/host-corpus/)
#include <capnp/serialize.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "frontend/host/remote-handle.h"
#include "frontend/host/validate.h"

namespace {

using nbdcage::chain::Io;
using nbdcage::chain::Slot;
using nbdcage::frontend::RemoteHandle;
using nbdcage::frontend::RingResources;

struct Input {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  // Sequenced: every compiler reads the same input the same way.
  uint32_t u32() {
    uint32_t v = 0;
    for (int shift = 0; shift < 32; shift += 8) v |= static_cast<uint32_t>(byte()) << shift;
    return v;
  }
};

// The submitter: counts each request's completions.
class Counter final : public nbdcage::chain::Completer {
 public:
  void complete(const Io& io, int error, uint32_t extents) override {
    if (io.slot.tag >= nbdcage::ipc::kRingEntries) abort();
    // errno values only, or the plugin's nbdkit_disconnect(1)
    if ((error < 0 || error > 4095) && error != nbdcage::chain::kDisconnectNow) abort();
    if (++done[io.slot.tag] != submitted[io.slot.tag]) abort();  // exactly once
    completed.push_back(io.slot);
  }
  uint32_t submitted[nbdcage::ipc::kRingEntries] = {};
  uint32_t done[nbdcage::ipc::kRingEntries] = {};
  std::vector<Slot> completed;
};

void answer(Input& in, bool list) {
  size_t wanted = in.byte();
  size_t words = std::min<size_t>(wanted, in.n / 8);
  if (words == 0) return;
  kj::Array<capnp::word> buf = kj::heapArray<capnp::word>(words);
  std::memcpy(buf.begin(), in.p, words * 8);
  in.p += words * 8;
  in.n -= words * 8;
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1 << 16;
  try {
    capnp::FlatArrayMessageReader reader(buf, options);
    if (list) {
      auto l = nbdcage::frontend::validateExportList(reader.getRoot<capnp::List<nbdcage::ipc::schema::ExportEntry>>());
      if (l.size() > 10000) abort();
    } else {
      auto x = nbdcage::frontend::validateExport(reader.getRoot<nbdcage::ipc::schema::ExportInfo>());
      if (x.size > static_cast<uint64_t>(INT64_MAX) || x.blockMax > (32u << 20) || x.description.size() > 4096) abort();
      if ((x.canTrim || x.canZero || x.canFua) && !x.canWrite) abort();
    }
  } catch (const nbdcage::frontend::HostError&) {
  } catch (const kj::Exception&) {  // not a message at all
  }
}

// What a connection's loop does with its bottom, without sleeping.
void sleepAndWake(RemoteHandle& handle, bool completions) {
  nbdcage::chain::Bottom::Wait w;
  if (!handle.prepareWait(completions, w)) return;
  int r;
  do {
    r = poll(w.fds, w.count, 0);
  } while (r < 0 && errno == EINTR);  // libFuzzer's timer signals interrupt it
  if (r < 0) abort();
  handle.wake(w);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  auto rings = RingResources::create(RemoteHandle::kDataAreaSize);
  auto* region = reinterpret_cast<nbdcage::ipc::Region*>(rings.region.data());
  int complete = rings.hostCompleteEnd.get();
  nbdcage::chain::ExportInfo info;
  info.size = 1 << 20;
  info.canWrite = info.canFlush = info.canTrim = info.canZero = info.canExtents = true;
  int death = eventfd(0, EFD_CLOEXEC);  // never readable: deaths are declared below
  Counter counter;
  {
    RemoteHandle handle(std::move(rings), info, kj::AutoCloseFd(death), std::chrono::milliseconds(0), "fuzz", {});
    nbdcage::ipc::RingProducer<nbdcage::ipc::CompleteDesc> host(region->complete);
    while (!in.empty()) {
      switch (in.byte() % 8) {
        case 0: {  // the frontend submits a request
          static const nbdcage::ipc::Op ops[] = {nbdcage::ipc::Op::kRead, nbdcage::ipc::Op::kWrite,
                                                 nbdcage::ipc::Op::kFlush, nbdcage::ipc::Op::kExtents};
          auto op = ops[in.byte() % 4];
          uint32_t len = in.u32() % (256 * 1024) + 1;
          if (op == nbdcage::ipc::Op::kFlush) len = 0;
          auto slot = handle.reserve(len);
          if (!slot) break;
          ++counter.submitted[slot->tag];
          handle.submit(Io{op, 0, 0, op == nbdcage::ipc::Op::kExtents ? 4096u : len, *slot, &counter});
          break;
        }
        case 1: {  // the host scribbles over the shared header and rings
          size_t span = sizeof(nbdcage::ipc::Region);
          size_t at = in.u32() % span;
          size_t n = in.byte();
          n = std::min(n, span - at);
          for (size_t i = 0; i < n; ++i) reinterpret_cast<uint8_t*>(region)[at + i] = in.byte();
          break;
        }
        case 2: {  // the host posts a completion, true or not
          nbdcage::ipc::CompleteDesc c{};
          c.tag = in.u32() % 300;
          c.error = static_cast<int32_t>(in.u32());
          c.extents = in.u32();
          host.push(c);
          break;
        }
        case 3:  // the frontend drains what is there
          handle.drainCompletions(in.byte());
          break;
        case 4: {  // the host rings (or floods) the bell
          char ring[64] = {};
          (void)!write(complete, ring, 1 + in.byte() % 64);
          sleepAndWake(handle, in.byte() & 1);
          break;
        }
        case 5:  // the frontend goes to sleep and wakes
          sleepAndWake(handle, in.byte() & 1);
          break;
        case 6: {  // RPC answers
          bool list = in.byte() & 1;
          answer(in, list);
          break;
        }
        case 7:  // the submitter frees what came back
          for (const Slot& s : counter.completed) handle.release(s);
          counter.completed.clear();
          break;
      }
    }
    handle.hostDied();  // whatever is left must complete now
    if (handle.inFlight() != 0) abort();
    for (uint32_t t = 0; t < nbdcage::ipc::kRingEntries; ++t)
      if (counter.done[t] != counter.submitted[t]) abort();
    for (const Slot& s : counter.completed) handle.release(s);
  }
  return 0;
}
