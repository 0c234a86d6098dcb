#include "frontend/nbd/stream.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace nbdcage::nbd {

bool Stream::readExact(void* buf, size_t n) {
  if (n == 0) return true;  // buf may be null (an empty option payload)
  auto* p = static_cast<uint8_t*>(buf);
  size_t have = std::min(n, end_ - start_);
  std::memcpy(p, buffer_ + start_, have);
  start_ += have;
  p += have;
  n -= have;
  if (n == 0) return true;
  if (n >= kBufferSize / 2) return readRaw(p, n);  // big: no double copy
  // Small: refill the buffer with whatever has arrived (at least n bytes).
  start_ = end_ = 0;
  while (end_ < n) {
    ssize_t r = read(in_, buffer_ + end_, kBufferSize - end_);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    end_ += static_cast<size_t>(r);
  }
  std::memcpy(p, buffer_, n);
  start_ = n;
  return true;
}

bool Stream::readRaw(uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(in_, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool Stream::discard(uint64_t n) {
  uint8_t scratch[65536];
  while (n > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, sizeof scratch));
    if (!readExact(scratch, chunk)) return false;
    n -= chunk;
  }
  return true;
}

bool Stream::writeAll(struct iovec* iov, int count) {
  std::lock_guard lock(writeLock_);
  while (count > 0) {
    ssize_t w = writev(out_, iov, count);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    auto done = static_cast<size_t>(w);
    while (count > 0 && done >= iov->iov_len) {
      done -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + done;
      iov->iov_len -= done;
    }
  }
  return true;
}

bool Stream::writeAll(const void* buf, size_t n) {
  struct iovec iov = {const_cast<void*>(buf), n};
  return writeAll(&iov, 1);
}

void Stream::shutdown() {
  ::shutdown(in_, SHUT_RDWR);
  if (out_ != in_) ::shutdown(out_, SHUT_RDWR);
}

}  // namespace nbdcage::nbd
