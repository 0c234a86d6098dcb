// The nbdkit_* helpers the plugin host exports: plugins rely on their exact
// parsing rules and on nbdkit_add_extent's contract.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pluginhost/abi-context.h"

extern "C" {
struct nbdkit_extents* nbdkit_extents_new(uint64_t start, uint64_t end);
void nbdkit_extents_free(struct nbdkit_extents*);
}

TEST_CASE("nbdkit_parse_size takes numbers with binary suffixes") {
  CHECK(nbdkit_parse_size("0") == 0);
  CHECK(nbdkit_parse_size("512") == 512);
  CHECK(nbdkit_parse_size("1k") == 1024);
  CHECK(nbdkit_parse_size("1K") == 1024);
  CHECK(nbdkit_parse_size("1M") == 1 << 20);
  CHECK(nbdkit_parse_size("2G") == int64_t{2} << 30);
  CHECK(nbdkit_parse_size("1T") == int64_t{1} << 40);
  CHECK(nbdkit_parse_size("4s") == 2048);  // 512-byte sectors
  CHECK(nbdkit_parse_size("1MiB") == 1 << 20);
}

TEST_CASE("nbdkit_parse_size refuses junk, negatives and overflow") {
  CHECK(nbdkit_parse_size("") == -1);
  CHECK(nbdkit_parse_size("-1") == -1);
  CHECK(nbdkit_parse_size("12Q") == -1);
  CHECK(nbdkit_parse_size("1M2") == -1);
  CHECK(nbdkit_parse_size("16E") == -1);
  CHECK(nbdkit_parse_size("99999999999999999999") == -1);
}

TEST_CASE("nbdkit_parse_bool knows the usual spellings, case-insensitively") {
  for (const char* s : {"1", "true", "TRUE", "yes", "on", "y"}) CHECK(nbdkit_parse_bool(s) == 1);
  for (const char* s : {"0", "false", "No", "off", "n"}) CHECK(nbdkit_parse_bool(s) == 0);
  CHECK(nbdkit_parse_bool("maybe") == -1);
}

TEST_CASE("nbdkit_parse_* integers: base prefixes, whole string, range") {
  int i;
  unsigned u;
  uint8_t b;
  CHECK(nbdkit_parse_int("x", "0x10", &i) == 0);
  CHECK(i == 16);
  CHECK(nbdkit_parse_int("x", "-5", &i) == 0);
  CHECK(i == -5);
  CHECK(nbdkit_parse_int("x", "5x", &i) == -1);
  CHECK(nbdkit_parse_unsigned("x", "-1", &u) == -1);
  CHECK(nbdkit_parse_uint8_t("x", "255", &b) == 0);
  CHECK(b == 255);
  CHECK(nbdkit_parse_uint8_t("x", "256", &b) == -1);
}

TEST_CASE("nbdkit_add_extent: contiguous, clipped to the window, merged") {
  auto* e = nbdkit_extents_new(1000, 5000);
  REQUIRE(e != nullptr);
  CHECK(nbdkit_add_extent(e, 0, 2000, 0) == 0);     // starts before the window: clipped
  CHECK(nbdkit_add_extent(e, 2000, 1000, 0) == 0);  // same type: merged
  CHECK(nbdkit_add_extent(e, 3000, 0, 3) == 0);     // empty: ignored
  CHECK(nbdkit_add_extent(e, 3000, 9000, 3) == 0);  // runs past the end: clipped
  REQUIRE(e->list.size() == 2);
  CHECK(e->list[0].offset == 1000);
  CHECK(e->list[0].length == 2000);
  CHECK(e->list[1].offset == 3000);
  CHECK(e->list[1].length == 2000);
  CHECK(e->list[1].type == 3u);
  nbdkit_extents_free(e);
}

TEST_CASE("nbdkit_add_extent refuses gaps, overlaps and a late first extent") {
  auto* e = nbdkit_extents_new(0, 4096);
  CHECK(nbdkit_add_extent(e, 512, 512, 0) == -1);  // the first must cover the start
  CHECK(nbdkit_add_extent(e, 0, 512, 0) == 0);
  CHECK(nbdkit_add_extent(e, 1024, 512, 0) == -1);  // a gap
  CHECK(nbdkit_add_extent(e, 256, 512, 0) == -1);   // an overlap
  nbdkit_extents_free(e);
}

TEST_CASE("nbdkit_error keeps errno and records the message for the frontend") {
  errno = ENOSPC;
  nbdkit_error("disk %s is full: %m", "x");
  CHECK(errno == ENOSPC);
  CHECK(nbdcage::host::takeThreadErrorMessage() == "disk x is full: No space left on device");
  nbdkit_set_error(EROFS);
  CHECK(nbdcage::host::takeThreadError() == EROFS);
  CHECK(nbdcage::host::takeThreadError() == 0);  // read once
}

TEST_CASE("nbdkit_absolute_path keeps absolute paths and anchors relative ones at the cwd") {
  char* a = nbdkit_absolute_path("/x/y");
  CHECK(std::strcmp(a, "/x/y") == 0);
  free(a);
  char* r = nbdkit_absolute_path("rel");
  CHECK(r[0] == '/');
  CHECK(std::strstr(r, "/rel") != nullptr);
  free(r);
}

TEST_CASE("nbdkit_parse_delay: seconds with fractions, ms, us, ns") {
  unsigned s = 99, ns = 99;
  CHECK(nbdkit_parse_delay("d", "1", &s, &ns) == 0);
  CHECK((s == 1 && ns == 0));
  CHECK(nbdkit_parse_delay("d", "1.25", &s, &ns) == 0);
  CHECK((s == 1 && ns == 250000000));
  CHECK(nbdkit_parse_delay("d", "2s", &s, &ns) == 0);
  CHECK((s == 2 && ns == 0));
  CHECK(nbdkit_parse_delay("d", "1500ms", &s, &ns) == 0);
  CHECK((s == 1 && ns == 500000000));
  CHECK(nbdkit_parse_delay("d", "1.2us", &s, &ns) == 0);
  CHECK((s == 0 && ns == 1200));
  CHECK(nbdkit_parse_delay("d", "120\u03bcs", &s, &ns) == 0);
  CHECK((s == 0 && ns == 120000));
  CHECK(nbdkit_parse_delay("d", "7ns", &s, &ns) == 0);
  CHECK((s == 0 && ns == 7));
  CHECK(nbdkit_parse_delay("d", "3", nullptr, &ns) == 0);  // either result may be discarded
  // Errors leave the results alone.
  s = ns = 42;
  for (const char* bad : {"", "ms", "1m", "1.5h", "-1", "1 s", "99999999999999999999"}) {
    CHECK(nbdkit_parse_delay("d", bad, &s, &ns) == -1);
    CHECK((s == 42 && ns == 42));
  }
}

TEST_CASE("nbdkit_parse_probability: decimals, percentages and ratios") {
  double p = -1;
  CHECK(nbdkit_parse_probability("p", "0.1", &p) == 0);
  CHECK(p == doctest::Approx(0.1));
  CHECK(nbdkit_parse_probability("p", "1e-1", &p) == 0);
  CHECK(p == doctest::Approx(0.1));
  CHECK(nbdkit_parse_probability("p", "10%", &p) == 0);
  CHECK(p == doctest::Approx(0.1));
  CHECK(nbdkit_parse_probability("p", "1:10", &p) == 0);
  CHECK(p == doctest::Approx(0.1));
  CHECK(nbdkit_parse_probability("p", "1/10", &p) == 0);
  CHECK(p == doctest::Approx(0.1));
  CHECK(nbdkit_parse_probability("p", "200%", &p) == 0);  // not clamped: the caller may
  CHECK(p == doctest::Approx(2.0));
  for (const char* bad : {"", "x", "1/0", "-0.5", "10%%", "1:", "inf", "nan"})
    CHECK(nbdkit_parse_probability("p", bad, &p) == -1);
}

TEST_CASE("nbdkit_timestamp is a UTC date and time with microseconds") {
  std::string t = nbdkit_timestamp();
  REQUIRE(t.size() == 26);
  CHECK((t[4] == '-' && t[7] == '-' && t[10] == ' ' && t[13] == ':' && t[16] == ':' && t[19] == '.'));
}

TEST_CASE("without TLS the peer's DNs are empty, and there is no security label") {
  char* dn = nbdkit_peer_tls_dn();
  char* issuer = nbdkit_peer_tls_issuer_dn();
  REQUIRE((dn != nullptr && issuer != nullptr));
  CHECK(std::string(dn).empty());
  CHECK(std::string(issuer).empty());
  free(dn);
  free(issuer);
  CHECK(nbdkit_peer_security_context() == nullptr);
}
