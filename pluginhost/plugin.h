// One loaded plugin: the nbdkit-compatible struct, copied to its full
// current size (fields beyond the plugin's _struct_size read as absent),
// and typed wrappers that hide the v1/v2 differences and nbdkit's
// defaulting rules for missing callbacks.
//
// Data calls return 0 or a positive errno, never -1: the errno comes from
// nbdkit_set_error, else from errno when the plugin preserves it, else EIO.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

// The host sees the version-2 layout; version-1 plugins fill the _v1 slots.
#define NBDKIT_API_VERSION 2
#include "nbdcage-plugin.h"

namespace nbdcage::host {

struct ExportAnswers {
  uint64_t size = 0;
  bool canWrite = false, canFlush = false, isRotational = false, canTrim = false;
  bool canZero = false, canMultiConn = false, canExtents = false, canFastZero = false;
  uint8_t canFua = NBDKIT_FUA_NONE, canCache = NBDKIT_CACHE_NONE;
  uint32_t blockMin = 0, blockPreferred = 0, blockMax = 0;
  std::string description;
};

struct Extent {
  uint64_t offset, length;
  uint32_t type;
};

class Plugin {
 public:
  // dlopen()s `path`, runs plugin_init, sets the -D debug flags that name
  // this plugin (NAME.FLAG=N sets the int NAME_debug_FLAG), then runs load.
  // Throws (kj) with a one-line message on failure.
  Plugin(const std::string& path, const std::vector<std::string>& debugFlags);
  ~Plugin();
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  const char* name() const { return p_.name; }
  const char* longname() const { return p_.longname ? p_.longname : ""; }
  // PLUGIN --help: its name, file, description and parameters.
  void printHelp(const std::string& path) const;
  const char* version() const { return p_.version ? p_.version : ""; }
  int apiVersion() const { return p_._api_version; }
  const char* magicConfigKey() const { return p_.magic_config_key; }
  int threadModel() const;  // min(declared, .thread_model())
  // --dump-plugin: KEY=VALUE facts on stdout, then the plugin's own.
  void dump(const std::string& path);

  // Configuration stage; each returns false after the plugin reported an
  // error.  Plugins may keep the key and value pointers (nbdkit hands them
  // argv), so both must stay valid for the life of the process.
  bool config(const char* key, const char* value);
  bool configComplete();
  bool getReady();
  bool afterFork();
  void cleanup();

  // Exports.  The list holds (name, description); useDefault entries are
  // resolved through defaultExport().
  bool listExports(bool readonly, std::vector<std::pair<std::string, std::string>>& out);
  bool defaultExport(bool readonly, std::string& out);

  // Handles.  open returns nullptr on failure.
  void* open(bool readonly);
  void close(void* h);
  bool answers(void* h, bool readonly, ExportAnswers& out);

  // Data calls.  FUA must already be resolved by the caller: pass
  // NBDKIT_FLAG_FUA only when answers().canFua is NATIVE.
  int pread(void* h, void* buf, uint32_t count, uint64_t offset, uint32_t flags);
  int pwrite(void* h, const void* buf, uint32_t count, uint64_t offset, uint32_t flags);
  int flush(void* h, uint32_t flags);
  int trim(void* h, uint32_t count, uint64_t offset, uint32_t flags);
  int zero(void* h, uint32_t count, uint64_t offset, uint32_t flags);
  int cache(void* h, uint32_t count, uint64_t offset, uint32_t flags);
  // Fills `out` with contiguous extents starting at `offset`, clipped to
  // [offset, offset+count).
  int extents(void* h, uint32_t count, uint64_t offset, uint32_t flags, std::vector<Extent>& out);

 private:
  void setDebugFlags(const std::vector<std::string>& flags);
  int failure() const;  // the errno for a plugin call that returned -1

  void* dl_ = nullptr;
  struct nbdkit_plugin p_ {};
};

}  // namespace nbdcage::host
