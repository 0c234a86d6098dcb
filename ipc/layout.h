// The shared-memory region of one plugin handle: the layout both processes
// map.  The frontend creates it (memfd), the host maps it.
//
//   +--------------------+  offset 0
//   | RegionHeader       |  written once by the frontend
//   +--------------------+
//   | submit ring        |  frontend -> host: SubmitDesc[kRingEntries]
//   +--------------------+
//   | complete ring      |  host -> frontend: CompleteDesc[kRingEntries]
//   +--------------------+  dataOffset (page aligned)
//   | data area          |  request payloads and read buffers, carved out
//   |                    |  by the frontend; a descriptor names its slice
//   +--------------------+  dataOffset + dataSize
//
// Descriptors are fixed-size and carry no pointers: only offsets into the
// data area, which the receiver bounds-checks before use.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace nbdcage::ipc {

inline constexpr uint32_t kRegionMagic = 0x4e424443;  // "NBDC"
inline constexpr uint32_t kLayoutVersion = 2;  // 2: pipe doorbells
inline constexpr uint32_t kRingEntries = 256;          // a power of two
inline constexpr uint64_t kPageSize = 4096;

// Operations on the data plane.  Numbered as NBD commands for readability;
// the host never sees NBD itself.
enum class Op : uint16_t {
  kRead = 0,
  kWrite = 1,
  kFlush = 3,
  kTrim = 4,
  kCache = 5,
  kZero = 6,
  kExtents = 7,
};

// For messages: "a read", "a write", ...
inline const char* opName(Op op) {
  switch (op) {
    case Op::kRead: return "a read";
    case Op::kWrite: return "a write";
    case Op::kFlush: return "a flush";
    case Op::kTrim: return "a trim";
    case Op::kCache: return "a cache";
    case Op::kZero: return "a zero";
    case Op::kExtents: return "an extents request";
  }
  return "a request";
}

// Flags carried in SubmitDesc::flags: nbdkit's data-call flags.
inline constexpr uint16_t kFlagMayTrim = 1 << 0;
inline constexpr uint16_t kFlagFua = 1 << 1;
inline constexpr uint16_t kFlagReqOne = 1 << 2;
inline constexpr uint16_t kFlagFastZero = 1 << 3;

struct SubmitDesc {
  uint32_t tag;        // the frontend's in-flight slot; echoed in completion
  uint16_t op;         // Op
  uint16_t flags;      // kFlag*
  uint64_t offset;     // byte offset in the export
  uint32_t count;      // bytes the operation covers
  uint32_t bufLen;     // bytes of data area owned by this request
  uint64_t bufOffset;  // start of that slice, relative to the data area
};
static_assert(sizeof(SubmitDesc) == 32);

struct CompleteDesc {
  uint32_t tag;      // as submitted
  int32_t error;     // 0 on success, else a positive errno
  uint32_t extents;  // kExtents: ExtentEntry records written to the buffer
  uint32_t reserved;
};
static_assert(sizeof(CompleteDesc) == 16);
// CompleteDesc::error beyond every errno: the plugin called
// nbdkit_disconnect(1), so the client is dropped at once, without a reply
// to this request or to any other in flight.
inline constexpr int32_t kErrorDisconnectNow = 0x10000;

// kExtents results, written by the host into the request's buffer.
struct ExtentEntry {
  uint64_t length;  // bytes, > 0
  uint32_t type;    // NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO
  uint32_t reserved;
};
static_assert(sizeof(ExtentEntry) == 16);

// One single-producer single-consumer ring.  Indices run freely (mod 2^32);
// slot = index % kRingEntries.  Only head and tail carry acquire/release;
// consumerSleeping implements the NEED_WAKEUP handshake (see ring.h).
template <typename Desc>
struct RingShared {
  alignas(64) std::atomic<uint32_t> head;  // written by the consumer only
  alignas(64) std::atomic<uint32_t> tail;  // written by the producer only
  alignas(64) std::atomic<uint32_t> consumerSleeping;
  alignas(64) Desc slots[kRingEntries];
};

struct RegionHeader {
  uint32_t magic;
  uint32_t version;
  uint32_t ringEntries;
  uint32_t reserved;
  uint64_t dataOffset;
  uint64_t dataSize;
};

struct Region {
  alignas(64) RegionHeader header;
  RingShared<SubmitDesc> submit;
  RingShared<CompleteDesc> complete;
};

static_assert(std::atomic<uint32_t>::is_always_lock_free,
              "rings in shared memory need lock-free atomics");

// Where the data area starts for a Region: the first page after the rings.
inline constexpr uint64_t dataAreaOffset() {
  return (sizeof(Region) + kPageSize - 1) / kPageSize * kPageSize;
}

}  // namespace nbdcage::ipc
