#include "filters/readonly/readonly.h"

#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>

namespace nbdcage::filters::readonly {

namespace {

bool writes(ipc::Op op) { return op == ipc::Op::kWrite || op == ipc::Op::kZero || op == ipc::Op::kTrim; }

class Stage final : public chain::ChangedInfoStage {
 public:
  Stage(chain::Next& next, const std::string& file) : ChangedInfoStage(next), file_(file) {
    if (file_.empty()) info_.canWrite = info_.canTrim = info_.canZero = info_.canFastZero = false;
  }
  void submit(const chain::Io& io) override {
    struct stat st;
    if (writes(io.op) && (file_.empty() || stat(file_.c_str(), &st) == 0)) return io.done->complete(io, EPERM, 0);
    next().submit(io);
  }

 private:
  const std::string file_;
};

class ReadOnly final : public chain::Filter {
 public:
  explicit ReadOnly(std::string file) : file_(std::move(file)) {}
  const char* name() const override { return "readonly"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    return kj::heap<Stage>(next, file_);
  }

 private:
  const std::string file_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string file;
  for (const auto& [key, v] : params) {
    if (v.empty()) throw std::runtime_error("readonly-file needs a file's path");
    file = v;
  }
  return std::make_unique<ReadOnly>(file);
}

}  // namespace nbdcage::filters::readonly
