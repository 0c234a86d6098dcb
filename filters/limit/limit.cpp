#include "filters/limit/limit.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace nbdcage::filters::limit {

namespace {

// Counts connections from before their greeting to their end, whatever
// they do in between (a client that never opens an export counts too).
class Limit final : public chain::Filter {
 public:
  explicit Limit(unsigned limit) : limit_(limit) {}
  const char* name() const override { return "limit"; }

  bool preconnect(const chain::Client&) override {
    std::lock_guard lock(lock_);
    if (limit_ != 0 && connected_ >= limit_) {
      fprintf(stderr, "nbdcage: limit: %u client%s connected already (limit=%u): a new one is refused\n", connected_,
              connected_ == 1 ? " is" : "s are", limit_);
      return false;
    }
    ++connected_;
    return true;
  }
  void disconnect() override {
    std::lock_guard lock(lock_);
    --connected_;
  }

 private:
  const unsigned limit_;
  std::mutex lock_;
  unsigned connected_ = 0;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  unsigned limit = 1;
  for (const auto& [key, value] : params) {
    char* end;
    errno = 0;
    unsigned long n = value.empty() || value[0] == '-' ? 0 : strtoul(value.c_str(), &end, 10);
    if (value.empty() || value[0] == '-' || errno != 0 || *end != '\0' || n > 1000000)
      throw std::runtime_error("limit must be a number of clients from 0 (no limit) to 1000000, not '" + value + "'");
    limit = static_cast<unsigned>(n);
  }
  return std::make_unique<Limit>(limit);
}

}  // namespace nbdcage::filters::limit
