// Where messages go (--log): nbdcage's own, and its plugin hosts', which
// arrive on a pipe per host and are copied line by line into ours.
//
//   plugin host stderr --pipe--> relay thread --> fd 2 --+--> stderr (default in the foreground)
//                                                        +--> syslog (default for a daemon)
//                                                        +--> a file (--log=/path)
//                                                        +--> nowhere (--log=null)
// Debug lines (-v) always go to the original stderr, as nbdkit does.
#pragma once

#include <kj/io.h>

#include <string>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace nbdcage::lifecycle {

enum class LogTo { kStderr, kSyslog, kNull, kFile };
struct LogTarget {
  LogTo to = LogTo::kStderr;
  std::string file;               // kFile: appended to
  std::string name = "nbdcage";   // --name: replaces "nbdcage" at the start of each line, and in syslog
};

// Parses Config::logTo(): stderr, syslog, null or file:PATH; false for
// anything else.
bool parseLogTo(const std::string& s, LogTarget& out);

// Opens a --log file for appending (created 0644): the descriptor, or -1
// with errno.
int openLogFile(const std::string& path);

// From now on, what is written to fd 2 goes to `target` (debug lines, with
// -v, to the original stderr; into a file, with the rest).  False (after
// saying why) if the file cannot be opened.
bool redirectLog(const LogTarget& target, bool verbose);

// Copies lines from `fd` (a host's stderr) to fd 2 until EOF or until
// `pidfd` says the host is gone (then whatever is buffered is copied).
// Join the returned thread after the host has died.
// `limited`: at most 1000 lines a second (bursts of 5000) pass; the rest
// are counted and the count is logged.
// `last` (if given) keeps the last lines relayed, for a crash report.
class LastLines {
 public:
  static constexpr size_t kKeep = 50;  // room for a sanitizer's or a runtime's stack trace and what came before
  void add(const std::string& line);
  std::vector<std::string> get() const;

 private:
  mutable std::mutex lock_;
  std::deque<std::string> lines_;
};
std::thread relayLines(kj::AutoCloseFd fd, int pidfd, bool limited, std::shared_ptr<LastLines> last = nullptr);

}  // namespace nbdcage::lifecycle
