#include "frontend/nbd/stream.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace nbdcage::nbd {

// Blocking helpers must work after setNonBlocking too (a final error
// reply): wait for the descriptor instead of failing with EAGAIN.  With a
// budget, the wait comes out of it.
bool Stream::waitFor(int fd, short events) {
  struct pollfd p = {fd, events, 0};
  int r;
  auto start = std::chrono::steady_clock::now();
  do {
    int timeout = budget_ ? static_cast<int>(budget_->count()) : -1;
    r = poll(&p, 1, timeout);
  } while (r < 0 && errno == EINTR);
  if (budget_) {
    auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    *budget_ = std::max(std::chrono::milliseconds(0), *budget_ - spent);
    if (r == 0) timedOut_ = true;
  }
  return r > 0;
}

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
    if (!readyToRead()) return false;
    ssize_t r = read(in_, buffer_ + end_, kBufferSize - end_);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN && waitFor(in_, POLLIN)) continue;
    if (r <= 0) return false;
    end_ += static_cast<size_t>(r);
  }
  std::memcpy(p, buffer_, n);
  start_ = n;
  return true;
}

bool Stream::readRaw(uint8_t* p, size_t n) {
  while (n > 0) {
    if (!readyToRead()) return false;
    ssize_t r = read(in_, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN && waitFor(in_, POLLIN)) continue;
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
  while (count > 0) {
    if (budget_ && !waitFor(out_, POLLOUT)) return false;
    size_t written;
    IoStatus st = writeSome(iov, count, written);
    if (st == IoStatus::kClosed) return false;
    if (st == IoStatus::kAgain) {
      if (!waitFor(out_, POLLOUT)) return false;
      continue;
    }
    while (count > 0 && written >= iov->iov_len) {
      written -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + written;
      iov->iov_len -= written;
    }
  }
  return true;
}

bool Stream::writeAll(const void* buf, size_t n) {
  struct iovec iov = {const_cast<void*>(buf), n};
  return writeAll(&iov, 1);
}

void Stream::setNonBlocking() {
  for (int fd : {in_, out_}) {
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }
}

IoStatus Stream::fill() {
  if (start_ == end_) start_ = end_ = 0;
  if (end_ == kBufferSize && start_ > 0) {
    std::memmove(buffer_, buffer_ + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (end_ == kBufferSize) return IoStatus::kOk;  // full: the caller consumes first
  for (;;) {
    ssize_t r = read(in_, buffer_ + end_, kBufferSize - end_);
    if (r > 0) {
      end_ += static_cast<size_t>(r);
      return IoStatus::kOk;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return IoStatus::kAgain;
    return IoStatus::kClosed;
  }
}

IoStatus Stream::readInto(uint8_t* dst, size_t n, size_t& got) {
  got = std::min(n, end_ - start_);
  std::memcpy(dst, buffer_ + start_, got);
  start_ += got;
  while (got < n) {
    ssize_t r = read(in_, dst + got, n - got);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return IoStatus::kAgain;
    return IoStatus::kClosed;
  }
  return IoStatus::kOk;
}

IoStatus Stream::writeSome(const struct iovec* iov, int count, size_t& written) {
  written = 0;
  for (;;) {
    ssize_t w = writev(out_, iov, std::min(count, IOV_MAX));
    if (w >= 0) {
      written = static_cast<size_t>(w);
      return IoStatus::kOk;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoStatus::kAgain;
    return IoStatus::kClosed;
  }
}

}  // namespace nbdcage::nbd
