#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "frontend/nbd/reply-batch.h"

using namespace nbdcage::nbd;

namespace {
struct Pair {
  int fds[2];
  Pair() {
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    int small = 4096;  // make the kernel take only part of a batch
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  }
  ~Pair() {
    close(fds[0]);
    close(fds[1]);
  }
  std::string drain() {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = recv(fds[1], buf, sizeof buf, MSG_DONTWAIT)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
};
}  // namespace

TEST_CASE("a batch goes out in order, in one piece when the socket takes it") {
  Pair p;
  Stream s(p.fds[0], p.fds[0]);
  s.setNonBlocking();
  ReplyBatch b(s);
  const uint8_t h1[] = {'a', 'b'}, h2[] = {'c'};
  std::vector<uint8_t> payload = {'1', '2', '3'};
  int released = 0;
  b.add(h1, 2, payload.data(), payload.size());
  b.afterFlush([&] { ++released; });
  b.add(h2, 1, std::vector<uint8_t>{'x', 'y'});
  CHECK(released == 0);
  CHECK(b.flushSome() == IoStatus::kOk);
  CHECK(released == 1);
  CHECK(b.empty());
  CHECK(p.drain() == "ab123cxy");
}

TEST_CASE("a batch larger than the socket takes is sent across several calls, in order") {
  Pair p;
  Stream s(p.fds[0], p.fds[0]);
  s.setNonBlocking();
  ReplyBatch b(s);
  std::vector<std::vector<uint8_t>> payloads;
  std::string expect;
  for (int i = 0; i < 40; ++i) {
    payloads.emplace_back(4096, static_cast<uint8_t>('A' + i % 26));
    uint8_t hdr[4] = {'#', static_cast<uint8_t>(i), '#', '#'};
    b.add(hdr, 4, payloads.back().data(), payloads.back().size());
    expect.append(reinterpret_cast<char*>(hdr), 4);
    expect.append(payloads.back().begin(), payloads.back().end());
  }
  bool released = false;
  b.afterFlush([&] { released = true; });
  std::string got;
  IoStatus st = b.flushSome();
  CHECK(st == IoStatus::kAgain);  // the small socket buffer filled up
  CHECK_FALSE(released);          // buffers must not be reused before they are sent
  for (int round = 0; st == IoStatus::kAgain && round < 10000; ++round) {
    got += p.drain();
    st = b.flushSome();
  }
  got += p.drain();
  CHECK(st == IoStatus::kOk);
  CHECK(released);
  CHECK(got == expect);
}

TEST_CASE("a batch says it is full at kMaxMessages replies, and still takes more, all sent in order") {
  Pair p;
  Stream s(p.fds[0], p.fds[0]);
  s.setNonBlocking();
  ReplyBatch b(s);
  for (size_t i = 0; i < ReplyBatch::kMaxMessages; ++i) {
    CHECK_FALSE(b.full());
    uint8_t h[] = {static_cast<uint8_t>(i)};
    b.add(h, 1);
  }
  CHECK(b.full());
  CHECK(b.room() == 0);
  // One completion below can answer several requests: they must all fit.
  for (size_t i = ReplyBatch::kMaxMessages; i < 3 * ReplyBatch::kMaxMessages; ++i) {
    uint8_t h[] = {static_cast<uint8_t>(i)};
    b.add(h, 1, std::vector<uint8_t>{static_cast<uint8_t>(i + 1)});
  }
  CHECK(b.flushSome() == IoStatus::kOk);
  std::string got = p.drain();
  std::string want;
  for (size_t i = 0; i < ReplyBatch::kMaxMessages; ++i) want += static_cast<char>(i);
  for (size_t i = ReplyBatch::kMaxMessages; i < 3 * ReplyBatch::kMaxMessages; ++i) {
    want += static_cast<char>(i);
    want += static_cast<char>(i + 1);
  }
  CHECK(got == want);
  CHECK_FALSE(b.full());
}

TEST_CASE("a peer that went away makes the flush fail and still releases the buffers") {
  Pair p;
  Stream s(p.fds[0], p.fds[0]);
  s.setNonBlocking();
  ReplyBatch b(s);
  close(p.fds[1]);
  p.fds[1] = open("/dev/null", O_RDONLY);
  const uint8_t h[] = {1, 2, 3};
  bool released = false;
  b.add(h, 3);
  b.afterFlush([&] { released = true; });
  CHECK(b.flushSome() == IoStatus::kClosed);
  CHECK(released);
  CHECK(b.empty());
}
