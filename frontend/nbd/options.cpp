#include "frontend/nbd/options.h"

#include "frontend/nbd/wire.h"

namespace nbdcage::nbd {

namespace {

// A cursor that refuses to read past the end.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> d) : d_(d) {}
  bool u16(uint16_t& v) {
    if (left() < 2) return false;
    v = getU16(d_.data() + pos_);
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    if (left() < 4) return false;
    v = getU32(d_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool string(uint32_t len, std::string& s) {
    if (len > kMaxStringLength || left() < len) return false;
    s.assign(reinterpret_cast<const char*>(d_.data() + pos_), len);
    pos_ += len;
    return true;
  }
  size_t left() const { return d_.size() - pos_; }

 private:
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<InfoRequest> parseInfoRequest(std::span<const uint8_t> data) {
  Reader r(data);
  InfoRequest out;
  uint32_t namelen;
  uint16_t n;
  if (!r.u32(namelen) || !r.string(namelen, out.name) || !r.u16(n)) return std::nullopt;
  if (r.left() != size_t{n} * 2) return std::nullopt;
  out.items.resize(n);
  for (auto& item : out.items) r.u16(item);
  return out;
}

std::optional<MetaContextRequest> parseMetaContextRequest(std::span<const uint8_t> data) {
  Reader r(data);
  MetaContextRequest out;
  uint32_t namelen, nq;
  if (!r.u32(namelen) || !r.string(namelen, out.exportName) || !r.u32(nq)) return std::nullopt;
  // Each query needs at least its 4-byte length: bound nq before reserving.
  if (nq > r.left() / 4) return std::nullopt;
  out.queries.reserve(nq);
  for (uint32_t i = 0; i < nq; ++i) {
    uint32_t len;
    std::string q;
    if (!r.u32(len) || !r.string(len, q)) return std::nullopt;
    out.queries.push_back(std::move(q));
  }
  if (r.left() != 0) return std::nullopt;
  return out;
}

bool queryMatchesBaseAllocation(const std::string& query, bool listing) {
  if (query == "base:allocation") return true;
  return listing && query == "base:";
}

}  // namespace nbdcage::nbd
