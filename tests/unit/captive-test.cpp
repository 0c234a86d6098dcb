#include <doctest/doctest.h>

#include "frontend/lifecycle/captive.h"

using namespace nbdcage::lifecycle;

TEST_CASE("export names are percent-encoded except unreserved characters and '/'") {
  CHECK(uriQuote("a b/c?") == "a%20b/c%3F");
  CHECK(uriQuote("AZaz09-._~") == "AZaz09-._~");
  CHECK(uriQuote("\xff") == "%FF");
}

TEST_CASE("shell quoting survives single quotes") {
  CHECK(shellQuote("plain") == "'plain'");
  CHECK(shellQuote("it's") == "'it'\\''s'");
}

TEST_CASE("URIs have nbdkit's captive formats") {
  Endpoint unixEp{std::string("/tmp/d/socket"), std::nullopt, std::nullopt, false};
  CHECK(nbdUri(unixEp, "") == "nbd+unix://?socket=/tmp/d/socket");
  CHECK(nbdUri(unixEp, "foo") == "nbd+unix:///foo?socket=/tmp/d/socket");
  Endpoint tcp{std::nullopt, std::string("10888"), std::nullopt, false};
  CHECK(nbdUri(tcp, "a b/c?") == "nbd://localhost:10888/a%20b/c%3F");
  // -i names the host; an IPv6 address goes in brackets.
  Endpoint v4{std::nullopt, std::string("10809"), std::string("127.0.0.1"), false};
  CHECK(nbdUri(v4, "") == "nbd://127.0.0.1:10809");
  Endpoint v6{std::nullopt, std::string("10809"), std::string("::1"), false};
  CHECK(nbdUri(v6, "x") == "nbd://[::1]:10809/x");
}

TEST_CASE("the captive script sets the variables before the command") {
  Endpoint unixEp{std::string("/tmp/s"), std::nullopt, std::nullopt, false};
  std::string s = captiveScript(unixEp, "e", "echo $uri");
  CHECK(s.find("uri='nbd+unix:///e?socket=/tmp/s'\n") == 0);
  CHECK(s.find("nbd=\"$uri\"\n") != std::string::npos);
  CHECK(s.find("unixsocket='/tmp/s'\n") != std::string::npos);
  CHECK(s.find("port=''\n") != std::string::npos);
  CHECK(s.find("tls=0\n") != std::string::npos);
  CHECK(s.rfind("echo $uri\n") == s.size() - 10);
}
