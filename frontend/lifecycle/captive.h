// Captive mode (--run CMD): the command runs under /bin/sh -c once the
// listener accepts, with $uri, $nbd, $port, $unixsocket, $exportname and $tls set
// as plain (unexported) shell variables, and nbdcage exits with its status.
#pragma once

#include <kj/async-unix.h>
#include <kj/io.h>

#include <boost/process/child.hpp>
#include <optional>
#include <string>

namespace nbdcage::lifecycle {

struct Endpoint {
  std::optional<std::string> unixSocket;  // absolute path
  std::optional<std::string> port;        // TCP or vsock
  std::optional<std::string> host;        // TCP: the -i address (else localhost)
  bool vsock = false;
};

// `%XX` for everything but RFC 3986 unreserved characters and '/'.
std::string uriQuote(const std::string& s);
// A word /bin/sh reads back as exactly `s`.
std::string shellQuote(const std::string& s);
// nbd+unix:///NAME?socket=PATH, nbd://HOST:PORT/NAME (HOST: -i's, else
// localhost; an IPv6 address in brackets) or
// nbd+vsock://1:PORT/NAME (CID 1: this machine).
std::string nbdUri(const Endpoint& ep, const std::string& exportName);
// The whole script given to /bin/sh -c.
std::string captiveScript(const Endpoint& ep, const std::string& exportName, const std::string& command);

class CaptiveCommand {
 public:
  // Starts the command now.  Throws std::runtime_error if it cannot.
  explicit CaptiveCommand(const std::string& script);
  ~CaptiveCommand();
  // Resolves with the exit status: the command's, or 128+N if a signal N
  // killed it.  A new call replaces an earlier one (whose promise must be
  // gone).
  kj::Promise<int> exited(kj::UnixEventPort& port);
  // Sends a signal to the command (if it still runs).
  void signal(int sig);

 private:
  boost::process::child child_;
  kj::AutoCloseFd pidfd_;
  kj::Own<kj::UnixEventPort::FdObserver> observer_;
  bool reaped_ = false;
};

}  // namespace nbdcage::lifecycle
