// partitioning: files served as the partitions of one disk, behind an MBR
// or GPT partition table made up here, as nbdkit's partitioning plugin
// does.  Reads of a partition read its file (zeroes past the file's end,
// up to the partition's whole sectors); the tables and the gaps read as
// built; writes reach the files, and writes elsewhere are refused (EIO),
// so the table cannot be changed under the files.
//
// Layout: each partition starts at the next multiple of its alignment=
// (default 1 MiB) after the previous one; MBR puts the first at the first
// alignment, GPT after its 34 sectors; GPT adds its backup table (33
// sectors) at the end.  The first partition is marked bootable in MBR.
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include "nbdcage-plugin.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kSector = 512;
constexpr uint32_t kGptEntries = 128, kGptEntrySize = 128;
constexpr uint64_t kGptSectors = 1 + kGptEntries * kGptEntrySize / kSector;  // header + entries: 33
const char* const kLinuxGuid = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

struct Part {
  std::string path;
  uint64_t alignment = 1 << 20;
  uint8_t mbrId = 0x83;
  std::string typeGuid = kLinuxGuid;
  int fd = -1;
  uint64_t fileSize = 0, start = 0, sectors = 0;  // start: byte offset in the disk
};

std::vector<Part> g_parts;
uint64_t g_alignment = 1 << 20;  // for the files that follow
uint8_t g_mbrId = 0x83;
std::string g_typeGuid = kLinuxGuid;
enum class Table { kDefault, kMbr, kGpt } g_table = Table::kDefault;
bool g_writable = true;
uint64_t g_size = 0;
std::vector<uint8_t> g_head, g_tail;  // the table at the start, GPT's backup at the end
uint64_t g_tailStart = 0;

void put16(uint8_t* p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
void put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = (v >> (8 * i)) & 0xff; }
void put64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = (v >> (8 * i)) & 0xff; }

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffff;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320 & (0 - (c & 1)));
  }
  return ~c;
}

// "0FC63DAF-8483-4772-8E79-3D69D8477DE4" into GPT's byte order (the first
// three fields little-endian).  False if it is not a GUID.
bool parseGuid(const std::string& s, uint8_t out[16]) {
  if (s.size() != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return false;
  uint8_t b[16];
  size_t at = 0;
  for (size_t i = 0; i < 36; ++i) {
    if (s[i] == '-') continue;
    if (i + 1 >= 36 || !isxdigit(static_cast<unsigned char>(s[i])) || !isxdigit(static_cast<unsigned char>(s[i + 1])))
      return false;
    b[at++] = static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16));
    ++i;
  }
  const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  for (int i = 0; i < 16; ++i) out[i] = b[order[i]];
  return true;
}

void randomGuid(uint8_t out[16]) {
  if (getrandom(out, 16, 0) != 16)
    for (int i = 0; i < 16; ++i) out[i] = static_cast<uint8_t>(rand());
  out[7] = (out[7] & 0x0f) | 0x40;  // version 4 (GPT byte order: field 3's high byte)
  out[8] = (out[8] & 0x3f) | 0x80;  // variant
}

int partConfig(const char* key, const char* value) {
  std::string k = key, v = value;
  if (k == "file") {
    Part p;
    char* real = nbdkit_realpath(value);
    if (!real) return -1;
    p.path = real;
    free(real);
    p.alignment = g_alignment;
    p.mbrId = g_mbrId;
    p.typeGuid = g_typeGuid;
    g_parts.push_back(p);
    return 0;
  }
  if (k == "partition-type") {
    if (v == "mbr") g_table = Table::kMbr;
    else if (v == "gpt") g_table = Table::kGpt;
    else {
      nbdkit_error("partition-type=%s: it must be mbr or gpt", value);
      return -1;
    }
    return 0;
  }
  if (k == "alignment") {
    int64_t a = nbdkit_parse_size(value);
    if (a < 0) return -1;
    if (a < static_cast<int64_t>(kSector) || a % kSector) {
      nbdkit_error("alignment=%s: it must be a multiple of 512", value);
      return -1;
    }
    g_alignment = static_cast<uint64_t>(a);
    return 0;
  }
  if (k == "mbr-id") {
    if (v == "default") {
      g_mbrId = 0x83;
      return 0;
    }
    return nbdkit_parse_uint8_t(key, value, &g_mbrId);
  }
  if (k == "type-guid") {
    uint8_t probe[16];
    if (v == "default") v = kLinuxGuid;
    if (!parseGuid(v, probe)) {
      nbdkit_error("type-guid=%s: not a GUID (like %s)", value, kLinuxGuid);
      return -1;
    }
    g_typeGuid = v;
    return 0;
  }
  nbdkit_error("unknown parameter '%s' (partitioning takes file=, partition-type=, alignment=, mbr-id=, type-guid=)",
               key);
  return -1;
}

void mbrEntry(uint8_t* e, bool boot, uint8_t type, uint64_t startLba, uint64_t sectors) {
  e[0] = boot ? 0x80 : 0;
  e[1] = 0xfe, e[2] = 0xff, e[3] = 0xff;  // CHS: beyond, use the LBA fields
  e[4] = type;
  e[5] = 0xfe, e[6] = 0xff, e[7] = 0xff;
  put32(e + 8, static_cast<uint32_t>(startLba));
  put32(e + 12, static_cast<uint32_t>(std::min<uint64_t>(sectors, 0xffffffff)));
}

int partConfigComplete() {
  if (g_parts.empty()) {
    nbdkit_error("give at least one file, e.g. 'partitioning boot.img root.img'");
    return -1;
  }
  bool gpt = g_table == Table::kGpt || (g_table == Table::kDefault && g_parts.size() > 4);
  if (!gpt && g_parts.size() > 4) {
    nbdkit_error("partition-type=mbr: %zu files, but nbdcage's MBR has 4 primary partitions and no extended one "
                 "(use partition-type=gpt)", g_parts.size());
    return -1;
  }
  if (gpt && g_parts.size() > kGptEntries) {
    nbdkit_error("%zu files: GPT has room for %u partitions", g_parts.size(), kGptEntries);
    return -1;
  }
  // Open each file (read-write if we may), and place the partitions.
  uint64_t next = gpt ? (2 + kGptEntries * kGptEntrySize / kSector) * kSector : kSector;
  for (auto& p : g_parts) {
    p.fd = open(p.path.c_str(), O_RDWR | O_CLOEXEC);
    if (p.fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
      p.fd = open(p.path.c_str(), O_RDONLY | O_CLOEXEC);
      g_writable = false;
    }
    struct stat st;
    if (p.fd < 0 || fstat(p.fd, &st) < 0) {
      nbdkit_error("open: %s: %m", p.path.c_str());
      return -1;
    }
    if (!S_ISREG(st.st_mode)) {
      nbdkit_error("%s: not a regular file", p.path.c_str());
      return -1;
    }
    p.fileSize = static_cast<uint64_t>(st.st_size);
    p.sectors = std::max<uint64_t>(1, (p.fileSize + kSector - 1) / kSector);
    p.start = (next + p.alignment - 1) / p.alignment * p.alignment;
    next = p.start + p.sectors * kSector;
  }
  uint64_t dataEnd = next;
  g_size = gpt ? dataEnd + kGptSectors * kSector : dataEnd;
  uint64_t totalSectors = g_size / kSector;
  if (!gpt && totalSectors > 0xffffffffull) {
    nbdkit_error("the disk is larger than MBR can describe (2 TiB): use partition-type=gpt");
    return -1;
  }

  g_head.assign(gpt ? (2 + kGptEntries * kGptEntrySize / kSector) * kSector : kSector, 0);
  uint8_t* mbr = g_head.data();
  uint8_t sig[4];
  if (getrandom(sig, 4, 0) == 4) std::memcpy(mbr + 440, sig, 4);  // the disk's signature
  mbr[510] = 0x55, mbr[511] = 0xaa;
  if (!gpt) {
    for (size_t i = 0; i < g_parts.size(); ++i)
      mbrEntry(mbr + 446 + 16 * i, i == 0, g_parts[i].mbrId, g_parts[i].start / kSector, g_parts[i].sectors);
    return 0;
  }
  // Protective MBR, then the GPT header and entries; the backup at the end.
  mbrEntry(mbr + 446, false, 0xee, 1, totalSectors - 1);
  std::vector<uint8_t> entries(kGptEntries * kGptEntrySize, 0);
  for (size_t i = 0; i < g_parts.size(); ++i) {
    uint8_t* e = entries.data() + i * kGptEntrySize;
    parseGuid(g_parts[i].typeGuid, e);
    randomGuid(e + 16);
    put64(e + 32, g_parts[i].start / kSector);
    put64(e + 40, g_parts[i].start / kSector + g_parts[i].sectors - 1);
    char name[37];
    snprintf(name, sizeof name, "p%zu", i + 1);
    for (size_t c = 0; name[c]; ++c) put16(e + 56 + 2 * c, static_cast<uint8_t>(name[c]));
  }
  uint8_t diskGuid[16];
  randomGuid(diskGuid);
  uint32_t entriesCrc = crc32(entries.data(), entries.size());
  auto header = [&](uint8_t* h, uint64_t self, uint64_t other, uint64_t entriesLba) {
    std::memcpy(h, "EFI PART", 8);
    put32(h + 8, 0x00010000);
    put32(h + 12, 92);
    put64(h + 24, self);
    put64(h + 32, other);
    put64(h + 40, 2 + kGptEntries * kGptEntrySize / kSector);  // first usable
    put64(h + 48, totalSectors - kGptSectors - 1);           // last usable
    std::memcpy(h + 56, diskGuid, 16);
    put64(h + 72, entriesLba);
    put32(h + 80, kGptEntries);
    put32(h + 84, kGptEntrySize);
    put32(h + 88, entriesCrc);
    put32(h + 16, crc32(h, 92));
  };
  header(g_head.data() + kSector, 1, totalSectors - 1, 2);
  std::memcpy(g_head.data() + 2 * kSector, entries.data(), entries.size());
  g_tail.assign(kGptSectors * kSector, 0);
  std::memcpy(g_tail.data(), entries.data(), entries.size());
  header(g_tail.data() + entries.size(), totalSectors - 1, 1, totalSectors - kGptSectors);
  g_tailStart = dataEnd;
  return 0;
}

void partUnload() {
  for (auto& p : g_parts)
    if (p.fd >= 0) close(p.fd);
}

void* partOpen(int) { return NBDKIT_HANDLE_NOT_NEEDED; }
int64_t partGetSize(void*) { return static_cast<int64_t>(g_size); }
int partCanWrite(void*) { return g_writable ? 1 : 0; }
int partYes(void*) { return 1; }
int partFuaEmulate(void*) { return NBDKIT_FUA_EMULATE; }

// Walks [offset, offset+count): fn(part or nullptr, bytes of the table or
// nullptr for zeroes, in-region offset, length, position in the buffer).
template <typename Fn>
int walk(uint64_t offset, uint32_t count, Fn&& fn) {
  uint64_t end = offset + count;
  while (offset < end) {
    uint64_t stop = end;
    const Part* part = nullptr;
    const uint8_t* table = nullptr;
    uint64_t in = 0;
    if (offset < g_head.size()) {
      table = g_head.data(), in = offset, stop = std::min<uint64_t>(stop, g_head.size());
    } else if (!g_tail.empty() && offset >= g_tailStart) {
      table = g_tail.data(), in = offset - g_tailStart;
    } else {
      for (const auto& p : g_parts) {
        uint64_t pend = p.start + p.sectors * kSector;
        if (offset >= p.start && offset < pend) {
          part = &p, in = offset - p.start, stop = std::min(stop, pend);
          break;
        }
        if (p.start > offset) {
          stop = std::min(stop, p.start);  // a gap before it: zeroes
          break;
        }
      }
      if (!part && !g_tail.empty()) stop = std::min(stop, g_tailStart);
    }
    if (fn(part, table, in, stop - offset) == -1) return -1;
    offset = stop;
  }
  return 0;
}

int partPread(void*, void* buf, uint32_t count, uint64_t offset, uint32_t) {
  auto* out = static_cast<uint8_t*>(buf);
  return walk(offset, count, [&](const Part* p, const uint8_t* table, uint64_t in, uint64_t len) {
    if (table) {
      std::memcpy(out, table + in, len);
    } else if (!p || in >= p->fileSize) {
      std::memset(out, 0, len);
    } else {
      uint64_t fromFile = std::min(len, p->fileSize - in);
      for (uint64_t done = 0; done < fromFile;) {
        ssize_t r = pread(p->fd, out + done, fromFile - done, static_cast<off_t>(in + done));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          nbdkit_error("pread: %s: %m", p->path.c_str());
          return -1;
        }
        if (r == 0) {  // it shrank: zeroes
          std::memset(out + done, 0, fromFile - done);
          break;
        }
        done += static_cast<uint64_t>(r);
      }
      std::memset(out + fromFile, 0, len - fromFile);
    }
    out += len;
    return 0;
  });
}

int partPwrite(void*, const void* buf, uint32_t count, uint64_t offset, uint32_t) {
  const auto* in8 = static_cast<const uint8_t*>(buf);
  return walk(offset, count, [&](const Part* p, const uint8_t* table, uint64_t in, uint64_t len) {
    if (table || !p || in + len > p->fileSize) {
      // Past a file's end inside its last sector, the bytes must stay zero.
      bool zeroes = true;
      for (uint64_t i = 0; i < len && zeroes; ++i) zeroes = in8[i] == 0;
      if (!(p && !table && zeroes) && !(table && std::memcmp(table + in, in8, len) == 0)) {
        nbdkit_error("a write to offset %" PRIu64 " would change the partition table or a gap: only the files' "
                     "bytes can be written", offset);
        nbdkit_set_error(EIO);
        return -1;
      }
      if (!p || in >= p->fileSize) {
        in8 += len;
        return 0;
      }
      len = p->fileSize - in;  // the file's part of it
    }
    for (uint64_t done = 0; done < len;) {
      ssize_t r = pwrite(p->fd, in8 + done, len - done, static_cast<off_t>(in + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        nbdkit_error("pwrite: %s: %m", p->path.c_str());
        return -1;
      }
      done += static_cast<uint64_t>(r);
    }
    in8 += len;
    return 0;
  });
}

int partFlush(void*, uint32_t) {
  for (const auto& p : g_parts)
    if (fdatasync(p.fd) < 0) {
      nbdkit_error("fdatasync: %s: %m", p.path.c_str());
      return -1;
    }
  return 0;
}

struct nbdkit_plugin makePlugin() {
  struct nbdkit_plugin p {};
  p.name = "partitioning";
  p.longname = "nbdcage partitioning plugin";
  p.version = NBDCAGE_VERSION;
  p.description = "Files served as the partitions of one disk, behind an MBR or GPT partition table.";
  p.unload = partUnload;
  p.config = partConfig;
  p.config_complete = partConfigComplete;
  p.config_help =
      "[file=]<FILE>        (required, repeatable) A partition's content, in order.\n"
      "partition-type=mbr|gpt  The table (default: mbr for up to 4 files, else gpt).\n"
      "alignment=<SIZE>     Where the following partitions start (default 1M).\n"
      "mbr-id=<N>|default   The MBR type of the following partitions (default 0x83).\n"
      "type-guid=<GUID>|default  The GPT type of the following partitions (default Linux).";
  p.magic_config_key = "file";
  p.open = partOpen;
  p.get_size = partGetSize;
  p.can_write = partCanWrite;
  p.can_flush = partYes;
  p.can_fua = partFuaEmulate;
  p.can_multi_conn = partYes;
  p.pread = partPread;
  p.pwrite = partPwrite;
  p.flush = partFlush;
  p.errno_is_preserved = 1;
  return p;
}

struct nbdkit_plugin plugin = makePlugin();

}  // namespace

NBDKIT_REGISTER_PLUGIN(plugin)
