// Work a stage must not do on its connection's loop (disk I/O of its own:
// cow's overlay), done on a filter's worker threads; the result comes back
// to the stage's loop through its Mailbox, whose descriptor the loop polls
// (the stage is a Waker).
//
//   loop thread:   pool.run(job, mailbox, then)           mailbox.onWake(): then(result)
//   worker thread:             job() -> result -> mailbox.post ---^
#pragma once

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "frontend/chain/filter.h"

namespace nbdcage::chain {

// Results waiting to run on one loop.
class Mailbox {
 public:
  Mailbox() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Mailbox() {
    std::lock_guard<std::mutex> lock(mu_);  // a post still under way finishes first
    close(fd_);
  }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  int fd() const { return fd_; }
  // Any thread.
  void post(std::function<void()> then) {
    std::lock_guard<std::mutex> lock(mu_);
    ready_.push_back(std::move(then));
    waiting_.fetch_add(1, std::memory_order_release);
    uint64_t one = 1;
    ssize_t r = write(fd_, &one, sizeof one);
    (void)r;  // the counter cannot overflow in practice; a full one is still readable
  }
  // The loop's thread: runs what has arrived, in order (cheap when nothing
  // has).
  void runReady() {
    if (waiting_.load(std::memory_order_acquire) == 0) return;
    uint64_t n;
    ssize_t r = read(fd_, &n, sizeof n);
    (void)r;
    std::deque<std::function<void()>> now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      now.swap(ready_);
      waiting_.fetch_sub(now.size(), std::memory_order_relaxed);
    }
    for (auto& f : now) f();
  }

 private:
  int fd_;
  std::mutex mu_;
  std::deque<std::function<void()>> ready_;
  std::atomic<size_t> waiting_{0};
};

class WorkerPool {
 public:
  // The threads take no signals (they are the loop's to handle), whenever
  // the pool is made.
  explicit WorkerPool(unsigned threads) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // Runs `job` on a worker, then `then(its result)` on the loop that owns
  // `box`.  The stage keeps `box` alive until `then` has run.
  void run(std::function<int()> job, Mailbox& box, std::function<void(int)> then) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back([job = std::move(job), &box, then = std::move(then)]() mutable {
        int r = job();
        box.post([then = std::move(then), r] { then(r); });
      });
    }
    cv_.notify_one();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace nbdcage::chain
