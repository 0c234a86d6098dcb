#include "filters/partition/partition.h"

#include <cstring>
#include <stdexcept>

#include "filters/offset/offset.h"
#include "filters/params.h"

namespace nbdcage::filters::partition {

namespace {

constexpr uint64_t kSector = 512;

uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }
uint64_t le64(const uint8_t* p) { return le32(p) | static_cast<uint64_t>(le32(p + 4)) << 32; }

void readOrThrow(const ReadFn& read, uint64_t offset, uint32_t count, uint8_t* out) {
  if (int err = read(offset, count, out); err != 0)
    throw std::runtime_error("reading the partition table at " + std::to_string(offset) + ": " + strerror(err));
}

Range checked(uint64_t startSector, uint64_t sectors, uint64_t diskSize, unsigned number) {
  if (sectors == 0) throw std::runtime_error("partition " + std::to_string(number) + " is empty");
  if (startSector > diskSize / kSector || sectors > diskSize / kSector - startSector)
    throw std::runtime_error("partition " + std::to_string(number) + " lies beyond the end of the disk");
  return Range{startSector * kSector, sectors * kSector};
}

bool isExtended(uint8_t type) { return type == 0x05 || type == 0x0f || type == 0x85; }

Range fromGpt(const ReadFn& read, uint64_t diskSize, unsigned number) {
  uint8_t header[kSector];
  readOrThrow(read, kSector, kSector, header);
  if (memcmp(header, "EFI PART", 8) != 0) throw std::runtime_error("the protective MBR names a GPT that is not there");
  uint64_t entriesAt = le64(header + 72);
  uint32_t entries = le32(header + 80), entrySize = le32(header + 84);
  if (entrySize < 128 || entrySize > 4096 || entrySize % 8) throw std::runtime_error("the GPT's entry size is not valid");
  if (number > entries) throw std::runtime_error("the GPT has no partition " + std::to_string(number));
  uint64_t at = entriesAt * kSector + uint64_t{number - 1} * entrySize;
  if (entriesAt > diskSize / kSector || at + entrySize > diskSize) throw std::runtime_error("the GPT lies beyond the disk's end");
  std::vector<uint8_t> e(entrySize);
  readOrThrow(read, at, entrySize, e.data());
  static const uint8_t kUnused[16] = {};
  if (memcmp(e.data(), kUnused, 16) == 0) throw std::runtime_error("partition " + std::to_string(number) + " is not in use");
  uint64_t first = le64(e.data() + 32), last = le64(e.data() + 40);
  if (last < first) throw std::runtime_error("partition " + std::to_string(number) + " ends before it starts");
  return checked(first, last - first + 1, diskSize, number);
}

// Logical partitions: a chain of extended boot records, each giving one
// partition (relative to itself) and the next record (relative to the
// extended partition's start).
Range fromEbrs(const ReadFn& read, uint64_t diskSize, uint64_t extendedStart, unsigned number) {
  uint64_t ebr = extendedStart;
  for (unsigned n = 5; n < 5 + 1024; ++n) {
    uint8_t sector[kSector];
    if (ebr > diskSize / kSector - 1) throw std::runtime_error("an extended boot record lies beyond the disk's end");
    readOrThrow(read, ebr * kSector, kSector, sector);
    if (sector[510] != 0x55 || sector[511] != 0xaa) break;
    const uint8_t* first = sector + 446;
    const uint8_t* next = sector + 446 + 16;
    if (n == number) {
      if (first[4] == 0) break;
      return checked(ebr + le32(first + 8), le32(first + 12), diskSize, number);
    }
    if (!isExtended(next[4]) || le32(next + 8) == 0) break;
    ebr = extendedStart + le32(next + 8);
  }
  throw std::runtime_error("the disk has no logical partition " + std::to_string(number));
}

}  // namespace

Range find(const ReadFn& read, uint64_t diskSize, unsigned number) {
  if (number == 0) throw std::runtime_error("partitions count from 1");
  if (diskSize < 2 * kSector) throw std::runtime_error("the disk is too small to have a partition table");
  uint8_t mbr[kSector];
  readOrThrow(read, 0, kSector, mbr);
  if (mbr[510] != 0x55 || mbr[511] != 0xaa) throw std::runtime_error("the disk has no MBR or GPT partition table");
  const uint8_t* entry = mbr + 446;
  for (int i = 0; i < 4; ++i)
    if (entry[16 * i + 4] == 0xee) return fromGpt(read, diskSize, number);
  if (number <= 4) {
    const uint8_t* e = entry + 16 * (number - 1);
    if (e[4] == 0) throw std::runtime_error("the MBR has no partition " + std::to_string(number));
    if (isExtended(e[4])) throw std::runtime_error("partition " + std::to_string(number) + " is the extended partition");
    return checked(le32(e + 8), le32(e + 12), diskSize, number);
  }
  for (int i = 0; i < 4; ++i)
    if (isExtended(entry[16 * i + 4])) return fromEbrs(read, diskSize, le32(entry + 16 * i + 8), number);
  throw std::runtime_error("the MBR has no extended partition, so no partition " + std::to_string(number));
}

namespace {

class Partition final : public chain::Filter {
 public:
  explicit Partition(unsigned number) : number_(number) {}
  const char* name() const override { return "partition"; }
  kj::Own<chain::Next> openReading(chain::Next& next, const std::string&, bool, chain::OpenReader& reader) override {
    try {
      Range r = find([&](uint64_t o, uint32_t c, uint8_t* out) { return reader.read(o, c, out); }, next.info().size,
                     number_);
      return offset::openStage(next, r.offset, r.length);  // requests move by the partition's start
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(std::string("partition: ") + e.what());
    }
  }

 private:
  const unsigned number_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  unsigned number = 0;
  for (const auto& [key, value] : params) number = parseCount(key, value, 1u << 20);
  if (number == 0) throw std::runtime_error("partition: partition=N (from 1) is required");
  return std::make_unique<Partition>(number);
}

}  // namespace nbdcage::filters::partition
