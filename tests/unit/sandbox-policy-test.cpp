#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "frontend/cli.h"
#include "frontend/host/sandbox-policy.h"

using nbdcage::Config;
using nbdcage::frontend::makeSandboxPolicy;
using nbdcage::frontend::SandboxPolicy;
namespace fs = std::filesystem;

namespace {

// A private directory with a file and a subdirectory in it.
struct Scratch {
  fs::path dir;
  Scratch() {
    char tmpl[] = "/tmp/nbdcage-policy-test.XXXXXX";
    dir = mkdtemp(tmpl);
    std::ofstream(dir / "disk.img") << "x";
    fs::create_directory(dir / "sub");
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const char* name) const { return (dir / name).string(); }
};

Config withPlugin(const std::string& so) {
  Config c;
  c.pluginPath = "/usr/lib/nbdkit/plugins/" + so;
  return c;
}

bool granted(const SandboxPolicy& p, const std::string& path, bool writable) {
  return std::any_of(p.paths.begin(), p.paths.end(),
                     [&](const auto& g) { return g.path == path && g.writable == writable; });
}

}  // namespace

TEST_CASE("the paths a plugin's parameters name are granted, read-write unless they are scripts") {
  Scratch s;
  Config c = withPlugin("nbdkit-file-plugin.so");
  c.params = {"file=" + (s / "disk.img"), "dir=" + (s / "sub"), "script=" + (s / "disk.img"), "size=1M"};
  auto p = makeSandboxPolicy(c);
  CHECK(granted(p, s / "disk.img", true));  // file= wins over script= for the same path
  CHECK(granted(p, s / "sub", true));
  CHECK(p.paths.size() == 2);
}

TEST_CASE("a bare parameter that names an existing path is granted; other values are not") {
  Scratch s;
  Config c = withPlugin("nbdcage-file-plugin.so");
  c.params = {s / "disk.img", s / "missing.img", "1G"};
  auto p = makeSandboxPolicy(c);
  CHECK(granted(p, s / "disk.img", true));
  CHECK(p.paths.size() == 1);
}

TEST_CASE("-r makes every grant read-only; :ro and url=file:// are read-only") {
  Scratch s;
  Config c = withPlugin("nbdkit-curl-plugin.so");
  c.readonly = true;
  c.params = {"url=file://" + (s / "disk.img")};
  c.allowPaths = {s / "sub"};
  auto p = makeSandboxPolicy(c);
  CHECK(granted(p, s / "disk.img", false));
  CHECK(granted(p, s / "sub", false));
  c.readonly = false;
  c.allowPaths = {(s / "sub") + ":ro"};
  CHECK(granted(makeSandboxPolicy(c), s / "sub", false));
}

TEST_CASE("a relative path is granted as the absolute path it names") {
  Scratch s;
  auto cwd = fs::current_path();
  fs::current_path(s.dir);
  Config c = withPlugin("nbdkit-file-plugin.so");
  c.params = {"file=disk.img"};
  auto p = makeSandboxPolicy(c);
  fs::current_path(cwd);
  CHECK(granted(p, s / "disk.img", true));
}

TEST_CASE("--allow-path of a missing path is an error") {
  Config c = withPlugin("nbdkit-memory-plugin.so");
  c.allowPaths = {"/nonexistent/nbdcage-test"};
  CHECK_THROWS_WITH(makeSandboxPolicy(c), "--allow-path: /nonexistent/nbdcage-test: no such file or directory");
}

TEST_CASE("exec: shell, language and tool-running plugins, or --allow-exec; network only when asked") {
  CHECK(makeSandboxPolicy(withPlugin("nbdkit-sh-plugin.so")).exec);
  CHECK(makeSandboxPolicy(withPlugin("nbdkit-python-plugin.so")).exec);
  CHECK(makeSandboxPolicy(withPlugin("nbdkit-tmpdisk-plugin.so")).exec);
  CHECK_FALSE(makeSandboxPolicy(withPlugin("nbdkit-file-plugin.so")).exec);
  CHECK_FALSE(makeSandboxPolicy(withPlugin("nbdcage-memory-plugin.so")).exec);
  Config c = withPlugin("nbdkit-file-plugin.so");
  c.allowExec = true;
  CHECK(makeSandboxPolicy(c).exec);
  CHECK_FALSE(makeSandboxPolicy(withPlugin("nbdkit-curl-plugin.so")).network);
  c.allowNetwork = true;
  CHECK(makeSandboxPolicy(c).network);
}

TEST_CASE("the host's arguments carry the policy; --no-sandbox carries nothing else") {
  Scratch s;
  Config c = withPlugin("nbdkit-file-plugin.so");
  c.params = {"file=" + (s / "disk.img")};
  c.allowNetwork = true;
  auto args = makeSandboxPolicy(c).hostArgs();
  std::vector<std::string> expected{"--allow-network", "--allow-rw", s / "disk.img"};
  if (geteuid() == 0) expected.insert(expected.end(), {"--identity", "65534:65534"});  // Debian's nobody:nogroup
  expected.insert(expected.end(), {"--max-processes", "4096"});
  CHECK(args == expected);
  c.sandbox = false;
  CHECK(makeSandboxPolicy(c).hostArgs() == std::vector<std::string>{"--no-sandbox"});
}

TEST_CASE("as root the host takes nobody's identity, or the one asked for; root keeps uid 0 only when asked") {
  Config c = withPlugin("nbdkit-memory-plugin.so");
  if (geteuid() != 0) {
    c.sandboxUser = "nobody";
    CHECK_THROWS_AS(makeSandboxPolicy(c), std::runtime_error);  // only root chooses
    return;
  }
  auto id = makeSandboxPolicy(c).identity;
  REQUIRE(id);
  CHECK(id->uid == 65534);
  CHECK(id->gid == 65534);
  c.sandboxUser = "daemon:nogroup";
  id = makeSandboxPolicy(c).identity;
  REQUIRE(id);
  CHECK(id->uid == 1);  // Debian's daemon
  CHECK(id->gid == 65534);
  c.sandboxUser = "4242:4343";
  id = makeSandboxPolicy(c).identity;
  REQUIRE(id);
  CHECK(id->uid == 4242);
  CHECK(id->gid == 4343);
  c.sandboxUser = "root";
  CHECK_FALSE(makeSandboxPolicy(c).identity);
  for (const char* bad : {"no-such-user-here", "nobody:no-such-group", "0", "nobody:root", "nobody:0"}) {
    c.sandboxUser = bad;
    CHECK_THROWS_AS(makeSandboxPolicy(c), std::runtime_error);
  }
}

TEST_CASE("the limits reach the host; 0 leaves one out") {
  Config c = withPlugin("nbdkit-memory-plugin.so");
  c.sandboxProcesses = 0;
  c.sandboxMemory = 256ULL << 20;
  c.sandboxFiles = 64;
  auto args = makeSandboxPolicy(c).hostArgs();
  auto value = [&](const std::string& option) {
    auto i = std::find(args.begin(), args.end(), option);
    return i == args.end() || i + 1 == args.end() ? std::string("absent") : *(i + 1);
  };
  CHECK(value("--max-processes") == "absent");
  CHECK(value("--max-memory") == "268435456");
  CHECK(value("--max-files") == "64");
}

TEST_CASE("the host's environment keeps the locale and PATH, never anything else") {
  setenv("NBDCAGE_POLICY_TEST_SECRET", "hunter2", 1);
  setenv("LC_TIME", "C", 1);
  auto env = makeSandboxPolicy(withPlugin("nbdkit-file-plugin.so")).hostEnv();
  auto has = [&](const std::string& prefix) {
    return std::any_of(env.begin(), env.end(), [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
  };
  CHECK(has("PATH="));
  CHECK(has("LC_TIME=C"));
  CHECK_FALSE(has("NBDCAGE_POLICY_TEST_SECRET="));
  unsetenv("NBDCAGE_POLICY_TEST_SECRET");
}

TEST_CASE("plugins that keep their disk in memory fail by default after a crash; others restart") {
  CHECK(withPlugin("nbdcage-memory-plugin.so").onCrash() == "fail");
  CHECK(withPlugin("nbdkit-data-plugin.so").onCrash() == "fail");
  CHECK(withPlugin("nbdkit-file-plugin.so").onCrash() == "restart");
  Config c = withPlugin("nbdcage-memory-plugin.so");
  c.onPluginCrash = "restart";
  CHECK(c.onCrash() == "restart");
  CHECK(nbdcage::pluginShortName("/x/nbdkit-python-plugin.so") == "python");
  CHECK(nbdcage::pluginShortName("/x/my-plugin.so") == "my-plugin.so");
}

TEST_CASE("nbdcage's curl declares the network, unless its URL is a file; nbdkit's curl does not") {
  Scratch s;
  Config ours = withPlugin("nbdcage-curl-plugin.so");
  ours.params = {"http://example.com/disk.img?a=b"};
  CHECK(makeSandboxPolicy(ours).network);
  ours.params = {"url=https://example.com/disk.img"};
  CHECK(makeSandboxPolicy(ours).network);
  ours.params = {"file://" + (s / "disk.img")};
  SandboxPolicy local = makeSandboxPolicy(ours);
  CHECK_FALSE(local.network);
  CHECK(granted(local, s / "disk.img", false));  // a bare file:// URL: its file, read-only
  Config theirs = withPlugin("nbdkit-curl-plugin.so");
  theirs.params = {"url=http://example.com/disk.img"};
  CHECK_FALSE(makeSandboxPolicy(theirs).network);
  theirs.allowNetwork = true;
  CHECK(makeSandboxPolicy(theirs).network);
}

TEST_CASE("tar's file= names a member, not a path; +FILE passwords are granted read-only") {
  Scratch s;
  Config tar = withPlugin("nbdcage-tar-plugin.so");
  tar.params = {"tar=" + (s / "disk.img"), "file=" + (s / "sub")};
  SandboxPolicy p = makeSandboxPolicy(tar);
  CHECK(granted(p, s / "disk.img", true));
  CHECK(p.paths.size() == 1);
  Config curl = withPlugin("nbdkit-curl-plugin.so");
  curl.params = {"url=http://x/", "password=+" + (s / "disk.img"), "proxy-password=+" + (s / "sub")};
  SandboxPolicy q = makeSandboxPolicy(curl);
  CHECK(granted(q, s / "disk.img", false));
  CHECK(granted(q, s / "sub", false));
}
