#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "filters/exitwhen/events.h"
#include "filters/registry.h"

using namespace nbdcage;

namespace {

const nbdcage::chain::Client kNobody{};  // a client the kernel told nothing about

class FakeControl final : public chain::ServerControl {
 public:
  void requestShutdown() override { ++requests; }
  std::atomic<int> requests{0};
};

class NullStage final : public chain::Next {
 public:
  const chain::ExportInfo& info() const override { return info_; }
  std::optional<chain::Slot> reserve(uint32_t) override { return std::nullopt; }
  void release(const chain::Slot&) override {}
  void submit(const chain::Io&) override {}
  chain::ExportInfo info_;
};

struct TempFile {
  std::string path = std::filesystem::temp_directory_path() / ("nbdcage-unit-" + std::to_string(getpid()));
  ~TempFile() { std::remove(path.c_str()); }
  void create() const { fclose(fopen(path.c_str(), "w")); }
};

}  // namespace

TEST_CASE("a parameter goes to the filter that takes its key") {
  CHECK(filters::takesKey("exitwhen", "exit-when-file-created"));
  CHECK(filters::takesKey("exitwhen", "exit-when-pid-exits"));  // nbdkit's aliases
  CHECK(filters::takesKey("exitwhen", "exit-when-fd-closed"));
  CHECK_FALSE(filters::takesKey("exitwhen", "size"));
  CHECK_FALSE(filters::takesKey("exitlast", "exit-when-poll"));
  CHECK_FALSE(filters::takesKey("nosuch", "x"));
  CHECK(filters::exists("exitlast"));
  CHECK_THROWS_AS(filters::make("nosuch", {}), std::runtime_error);
}

TEST_CASE("exitwhen's parameter errors name the filter and the parameter") {
  try {
    filters::make("exitwhen", {"exit-when-poll=0"});
    FAIL("accepted");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).starts_with("exitwhen: exit-when-poll: '0'"));
  }
  CHECK_THROWS(filters::make("exitwhen", {"exit-when-process-exits=-1"}));
  CHECK_THROWS(filters::make("exitwhen", {"exit-when-pipe-closed=x"}));
  CHECK_THROWS(filters::make("exitwhen", {"exit-when-script="}));
  CHECK(filters::exitwhen::parsePollSeconds("1") == 1);
  CHECK(filters::exitwhen::parsePollSeconds("86400") == 86400);
  CHECK_THROWS(filters::exitwhen::parsePollSeconds("86401"));
  CHECK_THROWS(filters::exitwhen::parsePollSeconds("1.5"));
}

TEST_CASE("an exitwhen script's exit status: 0 nothing, 88 the event, anything else an error") {
  using filters::exitwhen::ScriptResult;
  std::string m;
  CHECK(filters::exitwhen::classifyScript(0 << 8, m) == ScriptResult::kNothing);
  CHECK(filters::exitwhen::classifyScript(88 << 8, m) == ScriptResult::kEvent);
  CHECK(filters::exitwhen::classifyScript(1 << 8, m) == ScriptResult::kError);
  CHECK(m == "the command failed with exit code 1");
  CHECK(filters::exitwhen::classifyScript(89 << 8, m) == ScriptResult::kError);
  CHECK(m.find("reserved") != std::string::npos);
  CHECK(filters::exitwhen::classifyScript(SIGKILL, m) == ScriptResult::kError);
  CHECK(m == "the command was killed by signal 9");
}

TEST_CASE("exitwhen: after the event new clients are refused and the last one out stops the server") {
  TempFile f;
  auto filter = filters::make("exitwhen", {"exit-when-file-created=" + f.path, "exit-when-poll=86400"});
  CHECK_FALSE(filter->exitBeforeServing());
  FakeControl control;
  filter->start(control);
  NullStage below;
  CHECK(filter->preconnect(kNobody));
  auto a = filter->open(below, "", false);
  auto b = filter->open(below, "", false);
  f.create();
  CHECK_FALSE(filter->preconnect(kNobody));  // the event: refused
  a = nullptr;
  CHECK(control.requests == 0);  // b is still connected
  b = nullptr;
  CHECK(control.requests == 1);
}

TEST_CASE("exitwhen asks for the shutdown once, though the poller also sees the event") {
  TempFile f;
  auto filter = filters::make("exitwhen", {"exit-when-file-created=" + f.path, "exit-when-poll=1"});
  FakeControl control;
  filter->start(control);
  NullStage below;
  auto a = filter->open(below, "", false);
  f.create();
  a = nullptr;  // the last one out after the event
  CHECK(control.requests == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the poller has looked since
  CHECK(control.requests == 1);
}

TEST_CASE("exitwhen: an event that already happened is seen before serving") {
  TempFile f;
  f.create();
  auto filter = filters::make("exitwhen", {"exit-when-file-created=" + f.path});
  CHECK(filter->exitBeforeServing());
}

TEST_CASE("exitwhen with no events does nothing") {
  auto filter = filters::make("exitwhen", {"exit-when-poll=1"});
  CHECK_FALSE(filter->exitBeforeServing());
  CHECK(filter->preconnect(kNobody));
}

TEST_CASE("exitlast stops the server when the last handle closes, not before the first") {
  auto filter = filters::make("exitlast", {});
  FakeControl control;
  filter->start(control);
  NullStage below;
  auto a = filter->open(below, "", false);
  auto b = filter->open(below, "", false);
  a = nullptr;
  CHECK(control.requests == 0);
  b = nullptr;
  CHECK(control.requests == 1);
}

TEST_CASE("limit admits N clients at once, then one for each that left; 0 admits everyone") {
  auto two = filters::make("limit", {"limit=2"});
  CHECK(two->preconnect(kNobody));
  CHECK(two->preconnect(kNobody));
  CHECK_FALSE(two->preconnect(kNobody));  // refused: it does not count
  CHECK_FALSE(two->preconnect(kNobody));
  two->disconnect();
  CHECK(two->preconnect(kNobody));
  CHECK_FALSE(two->preconnect(kNobody));

  auto one = filters::make("limit", {});  // default 1
  CHECK(one->preconnect(kNobody));
  CHECK_FALSE(one->preconnect(kNobody));

  auto none = filters::make("limit", {"limit=0"});
  for (int i = 0; i < 100; ++i) CHECK(none->preconnect(kNobody));

  for (const char* bad : {"limit=-1", "limit=x", "limit=", "limit=1000001"})
    CHECK_THROWS_AS(filters::make("limit", {bad}), std::runtime_error);
}
