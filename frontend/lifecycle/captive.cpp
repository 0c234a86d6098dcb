#include "frontend/lifecycle/captive.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process/args.hpp>
#include <boost/process/extend.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace bp = boost::process;

namespace nbdcage::lifecycle {

std::string uriQuote(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string nbdUri(const Endpoint& ep, const std::string& exportName) {
  std::string name = exportName.empty() ? "" : "/" + uriQuote(exportName);
  if (ep.unixSocket) return "nbd+unix://" + name + "?socket=" + uriQuote(*ep.unixSocket);
  if (ep.vsock) return "nbd+vsock://1:" + ep.port.value_or("10809") + name;
  std::string host = ep.host.value_or("localhost");
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "nbd://" + host + ":" + ep.port.value_or("10809") + name;
}

std::string captiveScript(const Endpoint& ep, const std::string& exportName, const std::string& command) {
  std::string s;
  s += "uri=" + shellQuote(nbdUri(ep, exportName)) + "\n";
  s += "nbd=\"$uri\"\n";
  s += "exportname=" + shellQuote(exportName) + "\n";
  s += "port=" + shellQuote(ep.unixSocket ? "" : ep.port.value_or("10809")) + "\n";
  s += "unixsocket=" + shellQuote(ep.unixSocket.value_or("")) + "\n";
  s += "tls=0\n";  // nbdkit's --tls off; nbdcage has no TLS yet
  s += command + "\n";
  return s;
}

CaptiveCommand::CaptiveCommand(const std::string& script) {
  // The command gets a clean signal mask (ours blocks the signals the event
  // loop handles) and our stdin, stdout and stderr.
  auto setup = [](auto&) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
  };
  try {
    child_ = bp::child("/bin/sh", bp::args({std::string("-c"), script}), bp::extend::on_exec_setup = setup);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("--run: cannot start /bin/sh: ") + e.what());
  }
  int fd = static_cast<int>(syscall(SYS_pidfd_open, child_.id(), 0));
  if (fd < 0) throw std::runtime_error(std::string("pidfd_open: ") + strerror(errno));
  pidfd_ = kj::AutoCloseFd(fd);
}

CaptiveCommand::~CaptiveCommand() {
  if (!reaped_) {
    std::error_code ec;
    child_.terminate(ec);
  }
}

kj::Promise<int> CaptiveCommand::exited(kj::UnixEventPort& port) {
  observer_ = nullptr;  // an earlier call's: one observer per fd at a time
  observer_ = kj::heap<kj::UnixEventPort::FdObserver>(port, pidfd_.get(), kj::UnixEventPort::FdObserver::OBSERVE_READ);
  return observer_->whenBecomesReadable().then([this]() {
    std::error_code ec;
    child_.wait(ec);
    reaped_ = true;
    int code = child_.native_exit_code();
    if (WIFSIGNALED(code)) return 128 + WTERMSIG(code);
    return WIFEXITED(code) ? WEXITSTATUS(code) : 1;
  });
}

void CaptiveCommand::signal(int sig) {
  if (!reaped_) kill(child_.id(), sig);
}

}  // namespace nbdcage::lifecycle
