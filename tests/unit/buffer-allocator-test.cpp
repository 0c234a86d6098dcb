#include <doctest/doctest.h>

#include <vector>

#include "frontend/host/buffer-allocator.h"

using nbdcage::frontend::BufferAllocator;

TEST_CASE("allocations do not overlap and are granule-aligned") {
  BufferAllocator a(1 << 20);
  auto x = a.allocate(1);
  auto y = a.allocate(5000);
  REQUIRE(x);
  REQUIRE(y);
  CHECK(*x % BufferAllocator::kGranule == 0);
  CHECK(*y % BufferAllocator::kGranule == 0);
  CHECK((*y >= *x + 4096 || *x >= *y + 8192));
  CHECK(a.freeBytes() == (1 << 20) - 4096 - 8192);
}

TEST_CASE("an allocation that does not fit fails, and fits again after a free") {
  BufferAllocator a(64 * 1024);
  auto x = a.allocate(48 * 1024);
  REQUIRE(x);
  CHECK_FALSE(a.allocate(32 * 1024));
  a.free(*x, 48 * 1024);
  CHECK(a.allocate(64 * 1024));
}

TEST_CASE("freed neighbours coalesce into one run") {
  BufferAllocator a(16 * 4096);
  std::vector<uint64_t> offs;
  for (int i = 0; i < 16; ++i) offs.push_back(*a.allocate(4096));
  CHECK_FALSE(a.allocate(1));
  // Free in an order that needs merging on both sides.
  for (int i : {1, 3, 2, 0, 15, 14, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}) a.free(offs[i], 4096);
  CHECK(a.freeBytes() == 16 * 4096);
  CHECK(a.allocate(16 * 4096));
}
