// The filters' arithmetic: the ip filter's rules (what parses; what each
// matches: addresses and ranges of either family, v4-mapped v6, Unix
// credentials; the order allow, deny, default) and the rate filter's
// token bucket.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <vector>
#include <stdexcept>

#include "filters/cow/cow.h"
#include "filters/evil/evil.h"
#include "filters/ip/ip.h"
#include "filters/log/log.h"
#include "filters/partition/partition.h"
#include "filters/protect/protect.h"
#include "filters/stats/stats.h"
#include "filters/rate/rate.h"
#include "filters/truncate/truncate.h"
#include "filters/registry.h"

using nbdcage::chain::Client;
using nbdcage::filters::ip::matches;
using nbdcage::filters::ip::parseRules;

namespace {

Client v4(const char* a) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  inet_pton(AF_INET, a, &in.sin_addr);
  Client c;
  c.address.assign(reinterpret_cast<uint8_t*>(&in), reinterpret_cast<uint8_t*>(&in) + sizeof in);
  return c;
}

Client v6(const char* a) {
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, a, &in6.sin6_addr);
  Client c;
  c.address.assign(reinterpret_cast<uint8_t*>(&in6), reinterpret_cast<uint8_t*>(&in6) + sizeof in6);
  return c;
}

Client unixPeer(int64_t pid, int64_t uid, int64_t gid) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  Client c;
  c.address.assign(reinterpret_cast<uint8_t*>(&un), reinterpret_cast<uint8_t*>(&un) + sizeof(sa_family_t));
  c.credentials = Client::Credentials{pid, uid, gid};
  return c;
}

bool one(const char* rule, const Client& c) {
  auto rules = parseRules(rule);
  REQUIRE(rules.size() == 1);
  return matches(rules[0], c);
}

}  // namespace

TEST_CASE("ip rules: addresses and ranges match their family only") {
  CHECK(one("127.0.0.1", v4("127.0.0.1")));
  CHECK_FALSE(one("127.0.0.1", v4("127.0.0.2")));
  CHECK(one("10.0.0.0/8", v4("10.200.3.4")));
  CHECK_FALSE(one("10.0.0.0/8", v4("11.0.0.1")));
  CHECK(one("192.168.2.0/23", v4("192.168.3.255")));
  CHECK_FALSE(one("192.168.2.0/23", v4("192.168.4.0")));
  CHECK(one("0.0.0.0/0", v4("8.8.8.8")));
  CHECK(one("::1", v6("::1")));
  CHECK(one("2001:db8::/32", v6("2001:db8:ffff::1")));
  CHECK_FALSE(one("2001:db8::/32", v6("2001:db9::1")));
  CHECK_FALSE(one("::1", v4("127.0.0.1")));
  CHECK_FALSE(one("127.0.0.1", v6("::1")));
  // An IPv4 client on an IPv6 socket is an IPv4 client.
  CHECK(one("127.0.0.1", v6("::ffff:127.0.0.1")));
  CHECK(one("anyipv4", v6("::ffff:10.1.2.3")));
  CHECK_FALSE(one("anyipv6", v6("::ffff:10.1.2.3")));
}

TEST_CASE("ip rules: kinds, and Unix peers by uid, gid and pid") {
  Client u = unixPeer(42, 1000, 100);
  CHECK(one("all", u));
  CHECK(one("any", v4("1.2.3.4")));
  CHECK(one("anyunix", u));
  CHECK_FALSE(one("anyunix", v4("1.2.3.4")));
  CHECK(one("uid:1000", u));
  CHECK_FALSE(one("uid:0", u));
  CHECK(one("gid:100", u));
  CHECK(one("pid:42", u));
  CHECK_FALSE(one("uid:1000", v4("127.0.0.1")));  // no credentials over TCP
  CHECK(parseRules("127.0.0.1,::1,uid:0,anyvsock").size() == 4);
}

TEST_CASE("ip rules that cannot be read or honoured are refused") {
  for (const char* bad : {"", "a,,b", "localhost", "10.0.0.0/33", "::/129", "uid:", "uid:-1", "gid:x",
                          "dn:CN=a", "issuer-dn:CN=a", "security:x", "1.2.3"})
    CHECK_THROWS_AS(parseRules(bad), std::runtime_error);
}

TEST_CASE("the ip filter: allow first, then deny, else let in; no lists, no filtering") {
  auto f = nbdcage::filters::make("ip", {"allow=127.0.0.1", "deny=127.0.0.0/8"});
  CHECK(f->preconnect(v4("127.0.0.1")));      // allowed, though denied too
  CHECK_FALSE(f->preconnect(v4("127.0.0.2")));
  CHECK(f->preconnect(v4("10.0.0.1")));       // neither: let in
  auto none = nbdcage::filters::make("ip", {});
  CHECK(none->preconnect(Client{}));          // no lists: even an unknown kind
  auto lists = nbdcage::filters::make("ip", {"deny=10.0.0.0/8"});
  CHECK_FALSE(lists->preconnect(Client{}));   // a kind it cannot tell: refused
  auto all = nbdcage::filters::make("ip", {"allow=all", "deny=10.0.0.0/8"});
  CHECK(all->preconnect(Client{}));
}

TEST_CASE("the rate filter's bucket: a burst at once, then the rate; debts make the next wait") {
  using nbdcage::filters::rate::Bucket;
  using namespace std::chrono;
  auto t0 = Bucket::Clock::now();
  Bucket b(1000, 2.0, t0);  // 1000 bits/s, 2000 bits of burst
  CHECK(b.take(2000, t0) == Bucket::Clock::duration::zero());
  auto wait = b.take(500, t0);  // 500 bits of debt: half a second
  CHECK(duration_cast<milliseconds>(wait).count() == 500);
  // A second later 1000 bits came back: the debt is paid and 500 are left.
  CHECK(b.take(500, t0 + seconds(1)) == Bucket::Clock::duration::zero());
  CHECK(duration_cast<milliseconds>(b.take(1000, t0 + seconds(1))).count() == 1000);
  // The bucket never holds more than its burst.
  Bucket idle(1000, 2.0, t0);
  CHECK(idle.take(2000, t0 + seconds(100)) == Bucket::Clock::duration::zero());
  CHECK(idle.take(1, t0 + seconds(100)) > Bucket::Clock::duration::zero());
  Bucket unlimited(0, 2.0, t0);
  CHECK(unlimited.take(1e12, t0) == Bucket::Clock::duration::zero());
  CHECK(nbdcage::filters::rate::parseBits("1M") == 1048576.0);
  CHECK(nbdcage::filters::rate::parseBits("50K") == 51200.0);
  CHECK(nbdcage::filters::rate::parseBits("1.5k") == 1536.0);
  CHECK(nbdcage::filters::rate::parseBits("x") < 0);
  CHECK(nbdcage::filters::rate::parseBits("1Q") < 0);
}

TEST_CASE("the truncate filter's sizes: fixed, rounded up and down") {
  using nbdcage::filters::truncate::Sizing;
  Sizing fixed;
  fixed.truncate = 4096, fixed.fixed = true;
  CHECK(fixed.apply(1000000) == 4096);
  Sizing up;
  up.roundUp = 4096;
  CHECK(up.apply(1000000) == 1003520);
  CHECK(up.apply(8192) == 8192);
  CHECK(up.apply(0) == 0);
  Sizing down;
  down.roundDown = 4096;
  CHECK(down.apply(1000000) == 999424);
  CHECK(down.apply(4095) == 0);
  Sizing both;
  both.truncate = 5000, both.fixed = true, both.roundUp = 512;
  CHECK(both.apply(1) == 5120);
}

namespace {
// A disk image in memory, read as the partition filter reads its plugin.
struct Image {
  std::vector<uint8_t> bytes;
  explicit Image(size_t sectors) : bytes(sectors * 512) {}
  void le32(size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  void le64(size_t at, uint64_t v) {
    le32(at, static_cast<uint32_t>(v));
    le32(at + 4, static_cast<uint32_t>(v >> 32));
  }
  void mbrEntry(size_t sector, int index, uint8_t type, uint32_t start, uint32_t count) {
    size_t e = sector * 512 + 446 + 16 * index;
    bytes[e + 4] = type;
    le32(e + 8, start);
    le32(e + 12, count);
    bytes[sector * 512 + 510] = 0x55, bytes[sector * 512 + 511] = 0xaa;
  }
  nbdcage::filters::partition::ReadFn reader() {
    return [this](uint64_t o, uint32_t c, uint8_t* out) {
      if (o + c > bytes.size()) return EIO;
      std::memcpy(out, bytes.data() + o, c);
      return 0;
    };
  }
};
}  // namespace

TEST_CASE("the partition filter's tables: MBR primaries, logical partitions, GPT, and what it refuses") {
  using nbdcage::filters::partition::find;
  Image mbr(4096);
  mbr.mbrEntry(0, 0, 0x83, 64, 100);
  mbr.mbrEntry(0, 1, 0x05, 1000, 2000);           // extended
  mbr.mbrEntry(1000, 0, 0x83, 10, 50);            // logical 5: 1010..1060
  mbr.mbrEntry(1000, 1, 0x05, 500, 600);          // next EBR at 1000 + 500
  mbr.mbrEntry(1500, 0, 0x83, 20, 30);            // logical 6: 1520..1550
  auto size = mbr.bytes.size();
  CHECK(find(mbr.reader(), size, 1).offset == 64 * 512);
  CHECK(find(mbr.reader(), size, 1).length == 100 * 512);
  CHECK(find(mbr.reader(), size, 5).offset == 1010 * 512);
  CHECK(find(mbr.reader(), size, 6).offset == 1520 * 512);
  CHECK(find(mbr.reader(), size, 6).length == 30 * 512);
  CHECK_THROWS_WITH(find(mbr.reader(), size, 2), doctest::Contains("extended partition"));
  CHECK_THROWS_WITH(find(mbr.reader(), size, 3), doctest::Contains("no partition 3"));
  CHECK_THROWS_WITH(find(mbr.reader(), size, 7), doctest::Contains("no logical partition 7"));
  mbr.mbrEntry(0, 2, 0x83, 4000, 200);            // past the end
  CHECK_THROWS_WITH(find(mbr.reader(), size, 3), doctest::Contains("beyond the end"));

  Image gpt(256);
  gpt.mbrEntry(0, 0, 0xee, 1, 255);
  std::memcpy(gpt.bytes.data() + 512, "EFI PART", 8);
  gpt.le64(512 + 72, 2);    // entries at LBA 2
  gpt.le32(512 + 80, 128);  // 128 entries
  gpt.le32(512 + 84, 128);  // of 128 bytes
  size_t e2 = 2 * 512 + 128;  // entry 2
  gpt.bytes[e2] = 1;          // a type GUID: in use
  gpt.le64(e2 + 32, 100);
  gpt.le64(e2 + 40, 199);   // inclusive
  CHECK(find(gpt.reader(), gpt.bytes.size(), 2).offset == 100 * 512);
  CHECK(find(gpt.reader(), gpt.bytes.size(), 2).length == 100 * 512);
  CHECK_THROWS_WITH(find(gpt.reader(), gpt.bytes.size(), 1), doctest::Contains("not in use"));
  CHECK_THROWS_WITH(find(gpt.reader(), gpt.bytes.size(), 129), doctest::Contains("no partition 129"));

  Image blank(16);
  CHECK_THROWS_WITH(find(blank.reader(), blank.bytes.size(), 1), doctest::Contains("no MBR or GPT"));
  CHECK_THROWS_WITH(find(blank.reader(), 100, 1), doctest::Contains("too small"));
  CHECK_THROWS(find(mbr.reader(), size, 0));
}

TEST_CASE("the stats filter's classes and units, and the log filter's quoting") {
  using namespace nbdcage::filters;
  CHECK(stats::sizeBits(4096) == 12);
  CHECK(stats::sizeBits(8191) == 12);
  CHECK(stats::sizeBits(512) == 9);
  CHECK(stats::sizeBits(0) == 0);
  CHECK(stats::alignBits(8192) == 13);
  CHECK(stats::alignBits(4096 + 512) == 9);
  CHECK(stats::alignBits(0) == 64);
  CHECK(stats::humanBytes(512) == "512 bytes");
  CHECK(stats::humanBytes(1536) == "1.50 KiB");
  CHECK(stats::humanBytes(4.0 * (1 << 30)) == "4.00 GiB");
  CHECK(log::quoted("") == "\"\"");
  CHECK(log::quoted("a \"b\" $c `d` \\e") == "\"a \\\"b\\\" \\$c \\`d\\` \\\\e\"");
}

TEST_CASE("the cow filter's blocks: which a request touches, and which ends it covers only in part") {
  using nbdcage::filters::cow::blocksOf;
  auto b = blocksOf(0, 65536, 65536, 1 << 20);
  CHECK(b.first == 0);
  CHECK(b.last == 0);
  CHECK_FALSE(b.partialFirst);
  b = blocksOf(512, 512, 65536, 1 << 20);  // inside one block
  CHECK(b.first == 0);
  CHECK(b.last == 0);
  CHECK(b.partialFirst);
  CHECK_FALSE(b.partialLast);               // the same block: said once
  b = blocksOf(65536 - 1, 2, 65536, 1 << 20);  // straddles two
  CHECK(b.first == 0);
  CHECK(b.last == 1);
  CHECK(b.partialFirst);
  CHECK(b.partialLast);
  b = blocksOf(65536, 3 * 65536 + 100, 65536, 1 << 20);
  CHECK(b.last == 4);
  CHECK_FALSE(b.partialFirst);
  CHECK(b.partialLast);
  // The disk's short last block, covered to the disk's end: whole.
  b = blocksOf(65536, 1000, 65536, 65536 + 1000);
  CHECK(b.last == 1);
  CHECK_FALSE(b.partialFirst);
  CHECK_FALSE(b.partialLast);
}

TEST_CASE("the protect filter's ranges: inclusive ends, open ends, complements, merged") {
  using namespace nbdcage::filters::protect;
  auto ranges = [](std::vector<std::string> given, uint64_t size) {
    std::vector<Rule> rules;
    for (const auto& g : given) rules.push_back(parseRule(g));
    return protectedRanges(rules, size);
  };
  auto r = ranges({"0-0x1bd"}, 1 << 20);
  REQUIRE(r.size() == 1);
  CHECK(r[0].start == 0);
  CHECK(r[0].end == 0x1be);
  r = ranges({"~4096-8191"}, 1 << 20);
  REQUIRE(r.size() == 2);
  CHECK(r[0].end == 4096);
  CHECK(r[1].start == 8192);
  CHECK(r[1].end == 1 << 20);
  r = ranges({"100-", "-50", "40-120"}, 1000);  // open ends, overlapping: one range
  REQUIRE(r.size() == 1);
  CHECK(r[0].start == 0);
  CHECK(r[0].end == 1000);
  r = ranges({"2000-3000"}, 1000);  // past the disk: nothing
  CHECK(r.empty());
  r = ranges({"0-18446744073709551615"}, 1000);
  REQUIRE(r.size() == 1);
  CHECK(r[0].end == 1000);
  CHECK_THROWS(parseRule("5"));
  CHECK_THROWS(parseRule("10-2"));
  CHECK_THROWS(parseRule("0x-1"));
}

TEST_CASE("the evil filter's stuck bits: the same for a seed and granule, at the asked density") {
  using namespace nbdcage::filters::evil;
  CHECK(gap(1, 0.5) == 0);
  CHECK(gap(0, 0.5) == UINT64_MAX);
  CHECK(gap(0.5, 1.0) == 0);
  CHECK(gap(0.5, 0.25) == 2);  // log(0.25)/log(0.5)
  auto collect = [](uint64_t seed, double p, uint64_t g) {
    std::vector<std::pair<uint64_t, bool>> v;
    stuckBits(seed, p, g, [&](uint64_t bit, bool value) { v.emplace_back(bit, value); });
    return v;
  };
  auto a = collect(1, 1e-3, 5), b = collect(1, 1e-3, 5), c = collect(2, 1e-3, 5), d = collect(1, 1e-3, 6);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a != d);
  CHECK(a.size() > 7000);  // 8 Mbit at 1e-3: about 8389
  CHECK(a.size() < 9800);
  size_t high = 0, outside = 0;
  for (auto& [bit, value] : a) {
    outside += bit < 5 * kGranuleBits || bit >= 6 * kGranuleBits;
    high += value;
  }
  CHECK(outside == 0);
  CHECK(high > a.size() / 3);
  CHECK(high < 2 * a.size() / 3);
  CHECK(collect(1, 0, 0).empty());
  CHECK(collect(1, 1, 0).size() == kGranuleBits);
}
