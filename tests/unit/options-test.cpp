#include <doctest/doctest.h>

#include <vector>

#include "frontend/nbd/options.h"
#include "frontend/nbd/wire.h"

using namespace nbdcage::nbd;

namespace {
std::vector<uint8_t> u32(uint32_t v) {
  std::vector<uint8_t> b(4);
  putU32(b.data(), v);
  return b;
}
std::vector<uint8_t> u16(uint16_t v) {
  std::vector<uint8_t> b(2);
  putU16(b.data(), v);
  return b;
}
std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
std::vector<uint8_t> str(const std::string& s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("INFO/GO: a name and its info requests parse") {
  auto d = cat({u32(3), str("abc"), u16(2), u16(kInfoName), u16(kInfoBlockSize)});
  auto r = parseInfoRequest(d);
  REQUIRE(r);
  CHECK(r->name == "abc");
  CHECK(r->items == std::vector<uint16_t>{kInfoName, kInfoBlockSize});
}

TEST_CASE("INFO/GO: the empty default export with no requests parses") {
  auto r = parseInfoRequest(cat({u32(0), u16(0)}));
  REQUIRE(r);
  CHECK(r->name.empty());
  CHECK(r->items.empty());
}

TEST_CASE("INFO/GO: a name length past the option is invalid") {
  CHECK_FALSE(parseInfoRequest(cat({u32(100), str("abc"), u16(0)})));
  CHECK_FALSE(parseInfoRequest(cat({u32(0xffffffff), u16(0)})));
}

TEST_CASE("INFO/GO: fewer than 6 bytes, or a count that disagrees with the length, is invalid") {
  CHECK_FALSE(parseInfoRequest(u32(0)));
  CHECK_FALSE(parseInfoRequest(cat({u32(0), u16(2), u16(1)})));
  CHECK_FALSE(parseInfoRequest(cat({u32(0), u16(0), u16(1)})));
}

TEST_CASE("INFO/GO: names up to 4096 bytes are accepted, longer ones are not") {
  CHECK(parseInfoRequest(cat({u32(4096), str(std::string(4096, 'x')), u16(0)})));
  CHECK_FALSE(parseInfoRequest(cat({u32(4097), str(std::string(4097, 'x')), u16(0)})));
}

TEST_CASE("meta context: export name and queries parse") {
  auto d = cat({u32(1), str("e"), u32(2), u32(15), str("base:allocation"), u32(5), str("qemu:")});
  auto r = parseMetaContextRequest(d);
  REQUIRE(r);
  CHECK(r->exportName == "e");
  CHECK(r->queries == std::vector<std::string>{"base:allocation", "qemu:"});
}

TEST_CASE("meta context: a query length running past the option is invalid") {
  CHECK_FALSE(parseMetaContextRequest(cat({u32(0), u32(1), u32(50), str("base:")})));
}

TEST_CASE("meta context: a huge query count does not allocate, it fails") {
  CHECK_FALSE(parseMetaContextRequest(cat({u32(0), u32(0xffffffff)})));
}

TEST_CASE("meta context: trailing bytes are invalid") {
  CHECK_FALSE(parseMetaContextRequest(cat({u32(0), u32(0), u16(0)})));
}

TEST_CASE("base:allocation matches itself; base: matches only when listing") {
  CHECK(queryMatchesBaseAllocation("base:allocation", false));
  CHECK(queryMatchesBaseAllocation("base:", true));
  CHECK_FALSE(queryMatchesBaseAllocation("base:", false));
  CHECK_FALSE(queryMatchesBaseAllocation("base:xyz", true));
  CHECK_FALSE(queryMatchesBaseAllocation("qemu:dirty-bitmap:a", true));
}
