#include "frontend/host/inbox.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <kj/debug.h>

#include <cerrno>

namespace nbdcage::frontend {

struct Inbox::Poster::State {
  kj::AutoCloseFd bell;
  std::mutex lock;
  std::vector<std::function<void()>> jobs;  // guarded by lock
  bool open = true;                         // guarded by lock
};

bool Inbox::Poster::post(std::function<void()> job) const {
  {
    std::lock_guard lock(state_->lock);
    if (!state_->open) return false;
    state_->jobs.push_back(std::move(job));
  }
  ringBell(state_->bell.get());
  return true;
}

Inbox::Inbox(kj::UnixEventPort& port) {
  poster_.state_ = std::make_shared<Poster::State>();
  poster_.state_->bell = makeBell();
  observer_ = kj::heap<kj::UnixEventPort::FdObserver>(port, poster_.state_->bell.get(),
                                                      kj::UnixEventPort::FdObserver::OBSERVE_READ);
  draining_ = drain().eagerlyEvaluate(nullptr);
}

Inbox::~Inbox() {
  draining_ = nullptr;
  std::lock_guard lock(poster_.state_->lock);
  poster_.state_->open = false;
  poster_.state_->jobs.clear();
}

// Edge-triggered: the count is read (so the next post is a new edge)
// before the jobs are taken, so none posted meanwhile is missed.
kj::Promise<void> Inbox::drain() {
  auto& state = *poster_.state_;
  uint64_t count;
  while (read(state.bell.get(), &count, sizeof count) < 0 && errno == EINTR) {
  }
  std::vector<std::function<void()>> jobs;
  {
    std::lock_guard lock(state.lock);
    jobs.swap(state.jobs);
  }
  for (auto& job : jobs) job();
  return observer_->whenBecomesReadable().then([this]() { return drain(); });
}

kj::AutoCloseFd makeBell() {
  int fd;
  KJ_SYSCALL(fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  return kj::AutoCloseFd(fd);
}

void ringBell(int bell) {
  uint64_t one = 1;
  (void)!write(bell, &one, sizeof one);
}

void waitForBell(int bell, int client) {
  struct pollfd fds[2] = {{bell, POLLIN, 0}, {client, POLLRDHUP, 0}};
  for (;;) {
    int r = poll(fds, client >= 0 ? 2 : 1, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (fds[0].revents & POLLIN) || (client >= 0 && fds[1].revents)) return;
  }
}

}  // namespace nbdcage::frontend
