#include "filters/exitwhen/exitwhen.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "filters/exitwhen/events.h"

namespace nbdcage::filters::exitwhen {

namespace {

// Events are checked (all under one lock):
//   before serving      already happened: nbdcage exits 0 at once
//   every poll period   only while no client has a handle open
//   new connection      after an event: refused before the greeting
//   a handle closing    after an event, the last one out stops the server
// so clients that are connected keep working until they leave.
class ExitWhen final : public chain::Filter {
 public:
  ExitWhen(std::vector<std::unique_ptr<Event>> events, unsigned pollSeconds)
      : events_(std::move(events)), poll_(pollSeconds) {}

  ~ExitWhen() override {
    {
      std::lock_guard lock(lock_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (poller_.joinable()) poller_.join();
  }

  const char* name() const override { return "exitwhen"; }

  bool exitBeforeServing() override {
    std::lock_guard lock(lock_);
    return checkLocked();
  }

  void start(chain::ServerControl& control) override {
    if (events_.empty()) return;
    {
      std::lock_guard lock(lock_);
      control_ = &control;
    }
    poller_ = std::thread([this] { pollWhileIdle(); });
  }

  bool preconnect(const chain::Client&) override {
    std::lock_guard lock(lock_);
    if (!checkLocked()) return true;
    fprintf(stderr, "nbdcage: exitwhen: nbdcage is exiting: rejecting new connection\n");
    return false;
  }

  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Counted>(next, *this);
  }

 private:
  // One open handle: counted while it lives.
  class Counted final : public chain::FilterStage {
   public:
    Counted(chain::Next& next, ExitWhen& f) : FilterStage(next), f_(f) {
      std::lock_guard lock(f_.lock_);
      ++f_.connections_;
    }
    ~Counted() override { f_.closed(); }

   private:
    ExitWhen& f_;
  };

  void closed() {
    std::lock_guard lock(lock_);
    checkLocked();
    if (--connections_ == 0 && exiting_) shutdownLocked();
  }

  // The poller and the last handle out may both see the event: ask once.
  void shutdownLocked() {
    if (!control_ || shutdownAsked_) return;
    shutdownAsked_ = true;
    control_->requestShutdown();
  }

  // True once any event has happened (and from then on).
  bool checkLocked() {
    if (exiting_) return true;
    for (auto& e : events_) {
      if (e->happened()) {
        exiting_ = true;
        break;
      }
    }
    return exiting_;
  }

  void pollWhileIdle() {
    std::unique_lock lock(lock_);
    while (!stopping_) {
      if (connections_ == 0 && checkLocked()) {
        shutdownLocked();
        return;
      }
      wake_.wait_for(lock, std::chrono::seconds(poll_), [this] { return stopping_; });
    }
  }

  std::vector<std::unique_ptr<Event>> events_;
  const unsigned poll_;
  std::mutex lock_;
  std::condition_variable wake_;
  unsigned connections_ = 0;  // open handles
  bool exiting_ = false;
  bool stopping_ = false;
  bool shutdownAsked_ = false;
  chain::ServerControl* control_ = nullptr;
  std::thread poller_;
};

}  // namespace

bool takesKey(const std::string& key) {
  return key == "exit-when-file-created" || key == "exit-when-file-deleted" || key == "exit-when-pipe-closed" ||
         key == "exit-when-fd-closed" || key == "exit-when-process-exits" || key == "exit-when-pid-exits" ||
         key == "exit-when-script" || key == "exit-when-poll";
}

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  std::vector<std::unique_ptr<Event>> events;
  unsigned pollSeconds = 60;
  for (const auto& [key, value] : params) {
    if (key == "exit-when-file-created")
      events.push_back(fileCreated(value));
    else if (key == "exit-when-file-deleted")
      events.push_back(fileDeleted(value));
    else if (key == "exit-when-pipe-closed" || key == "exit-when-fd-closed")
      events.push_back(pipeClosed(value));
    else if (key == "exit-when-process-exits" || key == "exit-when-pid-exits")
      events.push_back(processExits(value));
    else if (key == "exit-when-script")
      events.push_back(script(value));
    else if (key == "exit-when-poll")
      pollSeconds = parsePollSeconds(value);
  }
  return std::make_unique<ExitWhen>(std::move(events), pollSeconds);
}

}  // namespace nbdcage::filters::exitwhen
