// libFuzzer target: the input is everything a client sends, from the first
// byte after connecting.  The real handshake, transmission loop and filter
// chain (ip, rate, readahead, nozero, nocache, offset and a pass-through filter) serve it over a socketpair,
// with an in-process RAM disk as the bottom stage (no plugin host).  Whatever the bytes, the server must end
// cleanly: no crash, no sanitizer report, no hang.
//
//   -Dfuzzing=true (clang): tests/fuzz/fuzz-server CORPUS_DIR   (libFuzzer)
//   always: fuzz-server-replay FILE...   replays inputs (the test suite
//           replays tests/fuzz/corpus/ this way)
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <thread>

#include "filters/registry.h"
#include "frontend/chain/chain.h"
#include "frontend/nbd/handshake.h"
#include "frontend/nbd/transmission.h"
#include "tests/fuzz/memory-bottom.h"

namespace {

// A filter that overrides nothing: its stages forward everything.
class PassThrough final : public nbdcage::chain::Filter {
 public:
  const char* name() const override { return "passthrough"; }
};

class MemoryExports final : public nbdcage::chain::ExportSource {
 public:
  // client -> readahead (its own requests, fan-out completions) ->
  // passthrough -> RAM disk: three boundaries on the way down.
  MemoryExports() {
    filters_.push_back(nbdcage::filters::make("ip", {"allow=anyunix", "deny=all"}));
    filters_.push_back(nbdcage::filters::make("retry", {"retry-delay=0"}));  // its own tags over the stages below
    filters_.push_back(nbdcage::filters::make("retry-request", {"retry-request-delay=0"}));
    filters_.push_back(nbdcage::filters::make("log", {"logfile=/dev/null"}));
    filters_.push_back(nbdcage::filters::make("stats", {"statsfile=/dev/null"}));
    filters_.push_back(nbdcage::filters::make("rate", {"rate=1T"}));
    filters_.push_back(nbdcage::filters::make("evil", {"evil-probability=1e-3", "evil-seed=1"}));
    filters_.push_back(nbdcage::filters::make("time-limit", {"time-limit=1"}));
    filters_.push_back(nbdcage::filters::make("protect", {"protect=0-0x1ff", "protect=~0-0xfffff"}));
    filters_.push_back(nbdcage::filters::make("cow", {"cow-block-size=4K"}));  // worker threads, partial blocks  // its timers, never its waits
    filters_.push_back(nbdcage::filters::make("readahead", {}));
    filters_.push_back(nbdcage::filters::make("nozero", {"zeromode=notrim", "fastzeromode=slow"}));
    filters_.push_back(nbdcage::filters::make("nocache", {"cachemode=nop"}));
    filters_.push_back(nbdcage::filters::make("offset", {"offset=0"}));
    filters_.push_back(std::make_unique<PassThrough>());
  }
  // Each filter's verdict on the client, as a connection thread asks it.
  bool preconnect(const nbdcage::chain::Client& client) {
    for (auto& f : filters_)
      if (!f->preconnect(client)) return false;
    return true;
  }
  kj::Own<nbdcage::chain::Handle> open(const std::string& name, bool readonly, const nbdcage::chain::Client&) override {
    return kj::heap<nbdcage::chain::Handle>(
        kj::heap<nbdcage::fuzz::MemoryBottom>(), [](bool) -> kj::Own<nbdcage::chain::Bottom> { return kj::heap<nbdcage::fuzz::MemoryBottom>(); },
        filters_, name, readonly);
  }
  nbdcage::chain::ExportList listExports(bool) override { return {{"", "fuzz"}, {"other", ""}}; }

 private:
  std::vector<std::unique_ptr<nbdcage::chain::Filter>> filters_;
};

// The client: sends the input, then half-closes, and reads (and drops)
// whatever the server answers until it closes.
void client(int fd, const uint8_t* data, size_t size) {
  size_t off = 0;
  while (off < size) {
    ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  char sink[65536];
  while (recv(fd, sink, sizeof sink, 0) > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  // The client's bytes must arrive whatever the server does with them.
  std::thread peer(client, sv[1], data, size);
  {
    MemoryExports exports;
    nbdcage::nbd::Stream stream(sv[0], sv[0]);
    nbdcage::chain::Client peerInfo = nbdcage::chain::Client::of(sv[0]);
    if (!exports.preconnect(peerInfo)) abort();  // a Unix socket peer: the ip filter lets it in
    nbdcage::nbd::Handshake handshake(stream, exports, false, peerInfo);
    auto negotiated = handshake.run();
    if (negotiated) nbdcage::nbd::Transmission(stream, *negotiated).run();
  }
  close(sv[0]);  // the client's recv sees EOF
  peer.join();
  close(sv[1]);
  return 0;
}
