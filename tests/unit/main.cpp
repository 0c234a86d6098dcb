#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <signal.h>

int main(int argc, char** argv) {
  // As in nbdcage itself: a peer that hangs up is an EPIPE, not a signal.
  signal(SIGPIPE, SIG_IGN);
  return doctest::Context(argc, argv).run();
}
