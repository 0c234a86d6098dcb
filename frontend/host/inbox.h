// How a connection thread asks the loop thread for something without
// waiting on it: jobs go into an Inbox (a lock and an eventfd the loop
// watches), and the answer comes back in an Answer, whose eventfd the
// connection waits on in poll() beside its own client.  No thread ever
// waits for another to run: each waits on its own descriptors only.
//
//   connection thread                 loop thread
//   inbox.post(job) ---eventfd------> job(): starts the host call
//   answer.wait(client fd) <-eventfd- answer.give(value) / refuse(why)
//   (the client hung up first: wait() gives up, and give() then returns
//    false, so the loop undoes what it got)
#pragma once

#include <kj/async-unix.h>
#include <kj/io.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace nbdcage::frontend {

class Inbox {
 public:
  explicit Inbox(kj::UnixEventPort& port);  // loop thread
  ~Inbox();                                 // loop thread: later posts are dropped

  // Any thread; never blocks beyond a lock.  The job runs on the loop
  // thread, unless the inbox is gone first (then never).
  class Poster {
   public:
    // False if the inbox is gone (the job is dropped at once).
    bool post(std::function<void()> job) const;

   private:
    friend class Inbox;
    struct State;
    std::shared_ptr<State> state_;
  };
  Poster poster() const { return poster_; }
  bool post(std::function<void()> job) const { return poster_.post(std::move(job)); }

 private:
  kj::Promise<void> drain();
  Poster poster_;
  kj::Own<kj::UnixEventPort::FdObserver> observer_;
  kj::Promise<void> draining_ = nullptr;
};

// The eventfd the Inbox and each Answer are announced on (throws if none
// can be made), and its ring.
kj::AutoCloseFd makeBell();
void ringBell(int bell);
// Waits until `bell` is readable, or `client` (if >= 0) hangs up.
void waitForBell(int bell, int client);

// One answer from the loop thread to a waiting thread.
template <typename T>
class Answer {
 public:
  Answer();
  // Loop thread.  False if the waiter has gone (the value is the giver's
  // to undo).
  bool give(T value);
  void refuse(std::string why);
  // Waiting thread: the value, or nullopt with `why` filled in.  With
  // `client` (>= 0), gives up when that descriptor hangs up first ("the
  // client left").
  std::optional<T> wait(std::string& why, int client = -1);

 private:
  kj::AutoCloseFd bell_;
  std::mutex lock_;
  std::optional<T> value_;
  std::optional<std::string> refused_;
  bool abandoned_ = false;
};

template <typename T>
Answer<T>::Answer() : bell_(makeBell()) {}

template <typename T>
bool Answer<T>::give(T value) {
  {
    std::lock_guard lock(lock_);
    if (abandoned_) return false;
    value_ = std::move(value);
  }
  ringBell(bell_.get());
  return true;
}

template <typename T>
void Answer<T>::refuse(std::string why) {
  {
    std::lock_guard lock(lock_);
    refused_ = std::move(why);
  }
  ringBell(bell_.get());
}

template <typename T>
std::optional<T> Answer<T>::wait(std::string& why, int client) {
  waitForBell(bell_.get(), client);
  std::lock_guard lock(lock_);  // an answer counts even if the client left too
  if (value_) return std::move(value_);
  if (refused_) {
    why = *refused_;
    return std::nullopt;
  }
  abandoned_ = true;  // nothing yet, and the client left
  why = "the client left while the plugin answered";
  return std::nullopt;
}

}  // namespace nbdcage::frontend
