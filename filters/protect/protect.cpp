#include "filters/protect/protect.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "filters/compare.h"

namespace nbdcage::filters::protect {

namespace {

std::optional<uint64_t> number(const std::string& s, const std::string& whole) {
  if (s.empty()) return std::nullopt;
  char* end;
  errno = 0;
  unsigned long long n = s[0] == '-' ? 0 : strtoull(s.c_str(), &end, 0);
  if (s[0] == '-' || errno || *end)
    throw std::runtime_error("protect= must be START-END or ~START-END (decimal, 0NN octal or 0xNN), not '" + whole + "'");
  return n;
}

}  // namespace

Rule parseRule(const std::string& value) {
  Rule r;
  std::string v = value;
  if (!v.empty() && v[0] == '~') r.complement = true, v.erase(0, 1);
  size_t dash = v.find('-');
  if (dash == std::string::npos)
    throw std::runtime_error("protect= must be START-END or ~START-END, not '" + value + "'");
  r.start = number(v.substr(0, dash), value);
  r.end = number(v.substr(dash + 1), value);
  if (r.start && r.end && *r.end < *r.start)
    throw std::runtime_error("protect=" + value + ": the range ends before it starts");
  return r;
}

std::vector<Range> protectedRanges(const std::vector<Rule>& rules, uint64_t size) {
  std::vector<Range> v;
  auto add = [&](uint64_t s, uint64_t e) {
    if (s < e) v.push_back({s, e});
  };
  for (const Rule& r : rules) {
    uint64_t s = std::min(r.start.value_or(0), size);
    uint64_t e = r.end ? std::min(*r.end + 1, size) : size;  // inclusive end; clipped to the disk
    if (r.end && *r.end == UINT64_MAX) e = size;
    if (!r.complement) {
      add(s, e);
    } else {
      add(0, s);
      add(e, size);
    }
  }
  std::sort(v.begin(), v.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
  std::vector<Range> merged;
  for (const Range& r : v) {
    if (!merged.empty() && r.start <= merged.back().end)
      merged.back().end = std::max(merged.back().end, r.end);
    else
      merged.push_back(r);
  }
  return merged;
}

namespace {

class Protect final : public chain::Filter {
 public:
  explicit Protect(std::vector<Rule> rules) : rules_(std::move(rules)) {}
  const char* name() const override { return "protect"; }
  kj::Own<chain::Next> open(chain::Next& next, const std::string&, bool) override {
    auto ranges = protectedRanges(rules_, next.info().size);
    if (ranges.empty()) return kj::heap<chain::FilterStage>(next);
    // The protected bytes a request covers are compared; a request that
    // would change them fails with EPERM, one that would not goes down.
    ComparePolicy policy;
    policy.ranges = [ranges](const chain::Io& io) {
      std::vector<ByteRange> v;
      for (const Range& r : ranges) {
        uint64_t s = std::max(r.start, io.offset), e = std::min(r.end, io.offset + io.count);
        if (s < e) v.push_back({s, e});
      }
      return v;
    };
    policy.mismatch = EPERM;
    policy.passMatching = true;
    policy.refuseTrim = true;  // a trim may change anything
    return openComparing(next, std::move(policy), "protect");
  }

 private:
  const std::vector<Rule> rules_;
};

}  // namespace

std::unique_ptr<chain::Filter> make(const std::vector<std::pair<std::string, std::string>>& params) {
  std::vector<Rule> rules;
  for (const auto& [key, value] : params) rules.push_back(parseRule(value));
  return std::make_unique<Protect>(std::move(rules));
}

}  // namespace nbdcage::filters::protect
