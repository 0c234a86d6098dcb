// The events the exitwhen filter watches.  Each is checked by polling
// (happened()), never by a thread of its own; a check that cannot tell logs
// why and says "not yet", except where nbdkit's behaviour is to fire.
#pragma once

#include <kj/io.h>

#include <memory>
#include <string>

namespace nbdcage::filters::exitwhen {

class Event {
 public:
  virtual ~Event() noexcept(false) = default;
  virtual bool happened() = 0;
};

// exit-when-file-created=FILE: FILE exists and is readable.
// A relative FILE is taken from the current directory, now.
std::unique_ptr<Event> fileCreated(const std::string& file);
// exit-when-file-deleted=FILE: FILE (or a directory above it) is gone.
std::unique_ptr<Event> fileDeleted(const std::string& file);
// exit-when-pipe-closed=FD: every write end of the pipe on FD is closed.
// FD becomes close-on-exec (neither plugin hosts nor --run inherit it).
// An FD that is not open fires (after a message), as in nbdkit.
std::unique_ptr<Event> pipeClosed(const std::string& fd);
// exit-when-process-exits=PID: watched through a pidfd taken now, so a
// later process that reuses the PID cannot hide the exit.
std::unique_ptr<Event> processExits(const std::string& pid);
// exit-when-script=CMD: /bin/sh -c CMD exits 88 (0: not yet; anything else
// is logged).
std::unique_ptr<Event> script(const std::string& command);

// What a script's wait status means: 0 nothing, 88 the event, the rest an
// error to log (`message` says which).
enum class ScriptResult { kNothing, kEvent, kError };
ScriptResult classifyScript(int waitStatus, std::string& message);

// exit-when-poll=SECS: 1 to 86400 whole seconds.
unsigned parsePollSeconds(const std::string& value);

}  // namespace nbdcage::filters::exitwhen
