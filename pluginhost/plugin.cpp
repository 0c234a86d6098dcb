#include "pluginhost/plugin.h"

#include <dlfcn.h>
#include <kj/debug.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "pluginhost/abi-context.h"

namespace nbdcage::host {

Plugin::Plugin(const std::string& path, const std::vector<std::string>& debugFlags) {
  dl_ = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  KJ_REQUIRE(dl_ != nullptr, "cannot load plugin", dlerror());
  using InitFn = struct nbdkit_plugin* (*)();
  auto init = reinterpret_cast<InitFn>(dlsym(dl_, "plugin_init"));
  KJ_REQUIRE(init != nullptr, "not a plugin: no plugin_init symbol", path);
  const struct nbdkit_plugin* theirs = init();
  KJ_REQUIRE(theirs != nullptr, "plugin_init returned NULL", path);
  KJ_REQUIRE(theirs->_api_version == 1 || theirs->_api_version == 2,
             "unsupported plugin API version (this host supports 1 and 2)", theirs->_api_version);
  // Copy only what the plugin declared; later fields stay zero = absent.
  size_t n = std::min<uint64_t>(theirs->_struct_size, sizeof p_);
  KJ_REQUIRE(n >= offsetof(struct nbdkit_plugin, get_size) + sizeof p_.get_size, "plugin struct too small", n);
  std::memcpy(&p_, theirs, n);
  KJ_REQUIRE(p_.name != nullptr && *p_.name != '\0', "plugin has no name", path);
  for (const char* c = p_.name; *c; ++c)
    KJ_REQUIRE((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_',
               "plugin name must be lower-case alphanumeric", p_.name);
  KJ_REQUIRE(p_.open != nullptr, "plugin must have an .open callback", p_.name);
  KJ_REQUIRE(p_.get_size != nullptr, "plugin must have a .get_size callback", p_.name);
  KJ_REQUIRE(p_._api_version == 2 ? p_.pread != nullptr : p_._pread_v1 != nullptr,
             "plugin must have a .pread callback", p_.name);
  setLogName(p_.name);
  setDebugFlags(debugFlags);
  if (p_.load) p_.load();
}

void Plugin::setDebugFlags(const std::vector<std::string>& flags) {
  std::string prefix = std::string(p_.name) + ".";
  for (const auto& f : flags) {
    if (f.compare(0, prefix.size(), prefix) != 0) {
      // The frontend kept its own (nbdkit.*, filters'): nobody has this one.
      fprintf(stderr, "nbdcage: warning: -D %s: there is no plugin or filter called '%s' (the plugin is '%s')\n",
              f.substr(0, f.find('=')).c_str(), f.substr(0, f.find('.')).c_str(), p_.name);
      continue;
    }
    auto eq = f.find('=');
    std::string flag = f.substr(prefix.size(), eq - prefix.size());
    std::string symbol = std::string(p_.name) + "_debug_" + flag;
    std::replace(symbol.begin(), symbol.end(), '.', '_');
    auto* var = static_cast<int*>(dlsym(dl_, symbol.c_str()));
    if (var == nullptr) {
      fprintf(stderr, "nbdcage: warning: -D %s: %s does not contain a global variable called %s\n",
              f.substr(0, eq).c_str(), p_.name, symbol.c_str());
      continue;
    }
    *var = static_cast<int>(strtol(f.c_str() + eq + 1, nullptr, 0));
  }
}

Plugin::~Plugin() {
  if (p_.unload) p_.unload();
  // The library stays mapped: plugins may have registered atexit handlers
  // or started threads that still reference their code.
}

int Plugin::threadModel() const {
  int model = p_._thread_model;
  if (p_.thread_model) {
    int asked = p_.thread_model();
    if (asked >= 0) model = std::min(model, asked);
  }
  return std::clamp(model, NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS, NBDKIT_THREAD_MODEL_PARALLEL);
}

void Plugin::dump(const std::string& path) {
  static const char* const kModels[] = {"serialize_connections", "serialize_all_requests", "serialize_requests",
                                        "parallel"};
  bool v2 = p_._api_version == 2;
  printf("path=%s\nname=%s\n", path.c_str(), p_.name);
  if (p_.version) printf("version=%s\n", p_.version);
  int declared = std::clamp(p_._thread_model, NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS, NBDKIT_THREAD_MODEL_PARALLEL);
  printf("api_version=%d\nstruct_size=%llu\nmax_thread_model=%s\nthread_model=%s\nerrno_is_preserved=%d\n",
         p_._api_version, static_cast<unsigned long long>(std::min<uint64_t>(sizeof p_, p_._struct_size)),
         kModels[declared], kModels[threadModel()], p_.errno_is_preserved);
  if (p_.magic_config_key) printf("magic_config_key=%s\n", p_.magic_config_key);
  const std::pair<const char*, bool> has[] = {
      {"longname", p_.longname}, {"description", p_.description}, {"load", p_.load}, {"unload", p_.unload},
      {"config", p_.config}, {"config_complete", p_.config_complete}, {"config_help", p_.config_help},
      {"get_ready", p_.get_ready}, {"after_fork", p_.after_fork}, {"preconnect", p_.preconnect},
      {"list_exports", p_.list_exports}, {"default_export", p_.default_export},
      {"export_description", p_.export_description}, {"open", p_.open}, {"close", p_.close},
      {"get_size", p_.get_size}, {"block_size", p_.block_size}, {"can_write", p_.can_write},
      {"can_flush", p_.can_flush}, {"is_rotational", p_.is_rotational}, {"can_trim", p_.can_trim},
      {"can_zero", p_.can_zero}, {"can_fast_zero", v2 && p_.can_fast_zero}, {"can_extents", p_.can_extents},
      {"can_fua", p_.can_fua}, {"can_multi_conn", p_.can_multi_conn}, {"can_cache", p_.can_cache},
      {"pread", v2 ? p_.pread != nullptr : p_._pread_v1 != nullptr},
      {"pwrite", v2 ? p_.pwrite != nullptr : p_._pwrite_v1 != nullptr},
      {"flush", v2 ? p_.flush != nullptr : p_._flush_v1 != nullptr},
      {"trim", v2 ? p_.trim != nullptr : p_._trim_v1 != nullptr},
      {"zero", v2 ? p_.zero != nullptr : p_._zero_v1 != nullptr}, {"extents", p_.extents},
      {"cache", p_.cache}, {"thread_model", p_.thread_model}, {"dump_plugin", p_.dump_plugin},
      {"cleanup", p_.cleanup}};
  for (const auto& [field, present] : has)
    if (present) printf("has_%s=1\n", field);
  fflush(stdout);
  if (p_.dump_plugin) p_.dump_plugin();
}

void Plugin::printHelp(const std::string& path) const {
  printf("plugin: %s", p_.name);
  if (p_.longname) printf(" (%s)", p_.longname);
  printf("\n(%s)\n", path.c_str());
  if (p_.description) printf("%s\n", p_.description);
  if (p_.config_help) printf("%s\n", p_.config_help);
  if (p_.magic_config_key) printf("(a bare VALUE is %s=VALUE)\n", p_.magic_config_key);
  fflush(stdout);
}

int Plugin::failure() const {
  int err = takeThreadError();
  if (err == 0 && p_.errno_is_preserved) err = errno;
  return err > 0 ? err : EIO;
}

bool Plugin::config(const char* key, const char* value) {
  if (p_.config == nullptr) {
    nbdkit_error("this plugin takes no parameters, but '%s=%s' was given", key, value);
    return false;
  }
  return p_.config(key, value) != -1;
}

bool Plugin::configComplete() { return p_.config_complete == nullptr || p_.config_complete() != -1; }
bool Plugin::getReady() { return p_.get_ready == nullptr || p_.get_ready() != -1; }
bool Plugin::afterFork() { return p_.after_fork == nullptr || p_.after_fork() != -1; }
void Plugin::cleanup() {
  if (p_.cleanup) p_.cleanup();
}

bool Plugin::defaultExport(bool readonly, std::string& out) {
  if (p_.default_export == nullptr) {
    out.clear();
    return true;
  }
  const char* name = p_.default_export(readonly, 0);
  if (name == nullptr) return false;
  out = name;
  return true;
}

bool Plugin::listExports(bool readonly, std::vector<std::pair<std::string, std::string>>& out) {
  nbdkit_exports exports;
  if (p_.list_exports == nullptr) {
    exports.useDefault = true;
  } else if (p_.list_exports(readonly, 0, &exports) == -1) {
    return false;
  }
  out = std::move(exports.list);
  if (exports.useDefault) {
    std::string name;
    if (!defaultExport(readonly, name)) return false;
    out.insert(out.begin(), {name, ""});
  }
  return true;
}

void* Plugin::open(bool readonly) {
  if (p_.preconnect && p_.preconnect(readonly) == -1) return nullptr;
  return p_.open(readonly);
}

void Plugin::close(void* h) {
  if (p_.close) p_.close(h);
}

namespace {
// Calls an optional boolean can_* callback; -1 is a failure.
bool ask(int (*fn)(void*), void* h, bool absent, bool& out) {
  if (fn == nullptr) {
    out = absent;
    return true;
  }
  int r = fn(h);
  out = r > 0;
  return r != -1;
}
}  // namespace

bool Plugin::answers(void* h, bool readonly, ExportAnswers& a) {
  int64_t size = p_.get_size(h);
  if (size < 0) return false;
  a.size = static_cast<uint64_t>(size);
  bool v2 = p_._api_version == 2;
  bool hasWrite = v2 ? p_.pwrite != nullptr : p_._pwrite_v1 != nullptr;
  bool hasFlush = v2 ? p_.flush != nullptr : p_._flush_v1 != nullptr;
  bool hasTrim = v2 ? p_.trim != nullptr : p_._trim_v1 != nullptr;
  bool hasZero = v2 ? p_.zero != nullptr : p_._zero_v1 != nullptr;
  if (!ask(p_.can_write, h, hasWrite, a.canWrite)) return false;
  a.canWrite = a.canWrite && hasWrite && !readonly;
  if (!ask(p_.can_flush, h, hasFlush, a.canFlush)) return false;
  a.canFlush = a.canFlush && hasFlush;
  if (!ask(p_.is_rotational, h, false, a.isRotational)) return false;
  if (!ask(p_.can_trim, h, hasTrim, a.canTrim)) return false;
  a.canTrim = a.canTrim && hasTrim && a.canWrite;
  // Zero is always possible on a writable export: emulated with pwrite.
  if (!ask(p_.can_zero, h, true, a.canZero)) return false;
  a.canZero = a.canZero && a.canWrite;
  bool fastZero;
  if (!ask(v2 ? p_.can_fast_zero : nullptr, h, !hasZero, fastZero)) return false;
  a.canFastZero = fastZero && a.canZero;
  if (!ask(p_.can_multi_conn, h, false, a.canMultiConn)) return false;
  if (!ask(p_.can_extents, h, p_.extents != nullptr, a.canExtents)) return false;
  a.canExtents = a.canExtents && p_.extents != nullptr;

  int fua = hasFlush ? NBDKIT_FUA_EMULATE : NBDKIT_FUA_NONE;
  if (v2 && p_.can_fua) {
    fua = p_.can_fua(h);
    if (fua == -1) return false;
  }
  a.canFua = a.canWrite ? static_cast<uint8_t>(std::clamp(fua, 0, 2)) : 0;
  if (a.canFua == NBDKIT_FUA_EMULATE && !hasFlush) a.canFua = NBDKIT_FUA_NONE;
  int cache = p_.cache ? NBDKIT_CACHE_NATIVE : NBDKIT_CACHE_NONE;
  if (p_.can_cache) {
    cache = p_.can_cache(h);
    if (cache == -1) return false;
  }
  a.canCache = static_cast<uint8_t>(std::clamp(cache, 0, 2));
  if (a.canCache == NBDKIT_CACHE_NATIVE && p_.cache == nullptr) a.canCache = NBDKIT_CACHE_EMULATE;

  if (p_.block_size) {
    uint32_t mn = 0, pref = 0, mx = 0;
    if (p_.block_size(h, &mn, &pref, &mx) == -1) return false;
    a.blockMin = mn;
    a.blockPreferred = pref;
    a.blockMax = mx;
  }
  if (p_.export_description) {
    const char* d = p_.export_description(h);
    if (d) a.description = d;
  }
  return true;
}

int Plugin::pread(void* h, void* buf, uint32_t count, uint64_t offset, uint32_t flags) {
  int r = p_._api_version == 2 ? p_.pread(h, buf, count, offset, 0) : p_._pread_v1(h, buf, count, offset);
  return r == -1 ? failure() : 0;
}

int Plugin::pwrite(void* h, const void* buf, uint32_t count, uint64_t offset, uint32_t flags) {
  if (p_.pwrite == nullptr && p_._pwrite_v1 == nullptr) return EROFS;
  int r = p_._api_version == 2 ? p_.pwrite(h, buf, count, offset, flags) : p_._pwrite_v1(h, buf, count, offset);
  return r == -1 ? failure() : 0;
}

int Plugin::flush(void* h, uint32_t flags) {
  int r = p_._api_version == 2 ? (p_.flush ? p_.flush(h, 0) : 0) : (p_._flush_v1 ? p_._flush_v1(h) : 0);
  return r == -1 ? failure() : 0;
}

int Plugin::trim(void* h, uint32_t count, uint64_t offset, uint32_t flags) {
  int r = p_._api_version == 2 ? (p_.trim ? p_.trim(h, count, offset, flags) : 0)
                               : (p_._trim_v1 ? p_._trim_v1(h, count, offset) : 0);
  return r == -1 ? failure() : 0;
}

int Plugin::zero(void* h, uint32_t count, uint64_t offset, uint32_t flags) {
  bool haveZero = p_._api_version == 2 ? p_.zero != nullptr : p_._zero_v1 != nullptr;
  if (haveZero) {
    int r = p_._api_version == 2 ? p_.zero(h, count, offset, flags)
                                 : p_._zero_v1(h, count, offset, (flags & NBDKIT_FLAG_MAY_TRIM) != 0);
    if (r != -1) return 0;
    int err = failure();
    // nbdkit's contract: a plugin may refuse with ENOTSUP/EOPNOTSUPP and
    // expect the server to fall back to writing zeroes.
    if ((err != ENOTSUP && err != EOPNOTSUPP) || (flags & NBDKIT_FLAG_FAST_ZERO)) return err;
  }
  if (flags & NBDKIT_FLAG_FAST_ZERO) return ENOTSUP;
  static const std::unique_ptr<char[]> zeroes(new char[1 << 20]());
  while (count > 0) {
    uint32_t n = std::min<uint32_t>(count, 1 << 20);
    int err = pwrite(h, zeroes.get(), n, offset, flags & NBDKIT_FLAG_FUA);
    if (err) return err;
    count -= n;
    offset += n;
  }
  return 0;
}

int Plugin::cache(void* h, uint32_t count, uint64_t offset, uint32_t flags) {
  if (p_.cache) {
    int r = p_.cache(h, count, offset, 0);
    return r == -1 ? failure() : 0;
  }
  // Emulation: read and discard, which warms whatever cache the plugin has.
  std::unique_ptr<char[]> scratch(new char[std::min<uint32_t>(count, 1 << 20)]);
  while (count > 0) {
    uint32_t n = std::min<uint32_t>(count, 1 << 20);
    int err = pread(h, scratch.get(), n, offset, 0);
    if (err) return err;
    count -= n;
    offset += n;
  }
  return 0;
}

int Plugin::extents(void* h, uint32_t count, uint64_t offset, uint32_t flags, std::vector<Extent>& out) {
  nbdkit_extents e;
  e.start = offset;
  e.end = offset + count;
  if (p_.extents(h, count, offset, flags, &e) == -1) return failure();
  if (e.list.empty() || e.list.front().offset != offset) {
    nbdkit_error("extents: the plugin returned no extent for the requested offset");
    return EIO;
  }
  out = std::move(e.list);
  return 0;
}

}  // namespace nbdcage::host
