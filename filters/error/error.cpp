#include "filters/error/error.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>

#include "filters/params.h"

namespace nbdcage::filters::error {

namespace {

// What one kind of request gets: an errno, how often, and a file whose
// presence switches it on (empty: always on).
struct Rule {
  int error = EIO;
  double rate = 0;
  std::string file;
};

enum Kind { kPread, kPwrite, kTrim, kZero, kExtents, kCache, kKinds };
const char* const kNames[kKinds] = {"pread", "pwrite", "trim", "zero", "extents", "cache"};

int errnoOf(const std::string& key, const std::string& v) {
  static const std::pair<const char*, int> kErrors[] = {{"EPERM", EPERM},   {"EIO", EIO},       {"ENOMEM", ENOMEM},
                                                        {"EINVAL", EINVAL}, {"ENOSPC", ENOSPC}, {"ESHUTDOWN", ESHUTDOWN}};
  for (const auto& [name, value] : kErrors)
    if (v == name) return value;
  throw std::runtime_error(key + " must be EPERM, EIO, ENOMEM, EINVAL, ENOSPC or ESHUTDOWN, not '" + v + "'");
}

class ErrorFilter;

class Stage final : public chain::FilterStage {
 public:
  Stage(chain::Next& next, ErrorFilter& f) : FilterStage(next), filter_(f) {}
  void submit(const chain::Io& io) override;

 private:
  ErrorFilter& filter_;
};

class ErrorFilter final : public chain::Filter {
 public:
  explicit ErrorFilter(const Rule (&rules)[kKinds]) : random_(std::random_device{}()) {
    for (int k = 0; k < kKinds; ++k) rules_[k] = rules[k];
  }
  const char* name() const override { return "error"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, *this);
  }
  // The errno this request fails with, or 0.
  int draw(Kind kind) {
    const Rule& r = rules_[kind];
    if (r.rate <= 0) return 0;
    struct stat st;
    if (!r.file.empty() && stat(r.file.c_str(), &st) != 0) return 0;
    std::lock_guard lock(lock_);
    return std::uniform_real_distribution<double>(0, 1)(random_) < r.rate ? r.error : 0;
  }

 private:
  Rule rules_[kKinds];
  std::mutex lock_;
  std::mt19937_64 random_;
};

void Stage::submit(const chain::Io& io) {
  Kind kind;
  switch (io.op) {
    case ipc::Op::kRead: kind = kPread; break;
    case ipc::Op::kWrite: kind = kPwrite; break;
    case ipc::Op::kTrim: kind = kTrim; break;
    case ipc::Op::kZero: kind = kZero; break;
    case ipc::Op::kExtents: kind = kExtents; break;
    case ipc::Op::kCache: kind = kCache; break;
    default: return next().submit(io);
  }
  if (int err = filter_.draw(kind)) {
    fprintf(stderr, "nbdcage: error: injecting %s into a %s request\n", strerror(err), kNames[kind]);
    return io.done->complete(io, err, 0);
  }
  next().submit(io);
}

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  Rule rules[kKinds];
  // The general keys first (they set every kind), then the per-kind ones.
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& [key, value] : params) {
      std::string k = key.substr(5);  // after "error"
      bool general = k.empty() || k == "-rate" || k == "-file";
      if (general != (pass == 0)) continue;
      for (int kind = 0; kind < kKinds; ++kind) {
        std::string prefix = general ? "" : std::string("-") + kNames[kind];
        if (!general && k.compare(0, prefix.size(), prefix) != 0) continue;
        std::string what = k.substr(prefix.size());
        if (what.empty()) rules[kind].error = errnoOf(key, value);
        else if (what == "-rate") rules[kind].rate = parseProbability(key, value);
        else if (what == "-file") rules[kind].file = value;
      }
    }
  return std::make_unique<ErrorFilter>(rules);
}

}  // namespace nbdcage::filters::error
