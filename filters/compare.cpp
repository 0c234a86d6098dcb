#include "filters/compare.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nbdcage::filters {

namespace {
bool writes(ipc::Op op) { return op == ipc::Op::kWrite || op == ipc::Op::kZero || op == ipc::Op::kTrim; }
}  // namespace

ComparingStage::ComparingStage(chain::Next& next, chain::Slot buf, ComparePolicy policy)
    : ChangedInfoStage(next), buf_(buf), policy_(std::move(policy)) {}

ComparingStage::~ComparingStage() { next().release(buf_); }

void ComparingStage::submit(const chain::Io& io) {
  if (!writes(io.op) || policy_.ranges(io).empty()) {
    if (io.op == ipc::Op::kFlush && !next().info().canFlush) return io.done->complete(io, 0, 0);
    return next().submit(io);
  }
  if (io.op == ipc::Op::kTrim && policy_.refuseTrim) return io.done->complete(io, policy_.mismatch, 0);
  queue_.push_back(io);
  if (queue_.size() == 1) startCheck();
}

void ComparingStage::startCheck() {
  pieces_.clear();
  for (const ByteRange& r : policy_.ranges(queue_.front()))
    for (uint64_t s = r.start; s < r.end; s += std::min<uint64_t>(r.end - s, buf_.bufLen))
      pieces_.push_back({s, std::min<uint64_t>(s + buf_.bufLen, r.end)});
  piece_ = 0;
  readPiece();
}

void ComparingStage::readPiece() {
  const ByteRange& p = pieces_[piece_];
  next().submit(chain::Io{ipc::Op::kRead, 0, p.start, static_cast<uint32_t>(p.end - p.start), buf_, this});
}

void ComparingStage::complete(const chain::Io&, int error, uint32_t) {
  const chain::Io io = queue_.front();
  const ByteRange& p = pieces_[piece_];
  bool same = error == 0;
  if (same) {
    size_t n = p.end - p.start;
    if (io.op == ipc::Op::kWrite)
      same = memcmp(buf_.buf, io.slot.buf + (p.start - io.offset), n) == 0;
    else
      same = std::all_of(buf_.buf, buf_.buf + n, [](uint8_t b) { return b == 0; });
  }
  if (same && ++piece_ < pieces_.size()) return readPiece();
  queue_.erase(queue_.begin());
  if (same && policy_.passMatching)
    next().submit(io);
  else
    io.done->complete(io, same ? 0 : error != 0 ? error : policy_.mismatch, 0);
  if (!queue_.empty()) startCheck();
}

kj::Own<ComparingStage> openComparing(chain::Next& next, ComparePolicy policy, const char* filter) {
  uint32_t len = ComparingStage::kBuffer;
  if (next.info().blockMax) len = std::min(len, next.info().blockMax);  // a request the plugin takes
  auto buf = next.reserve(len);
  if (!buf) throw std::runtime_error(std::string(filter) + ": no buffer to compare the plugin's data in");
  return kj::heap<ComparingStage>(next, *buf, std::move(policy));
}

}  // namespace nbdcage::filters
