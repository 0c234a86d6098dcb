#include "frontend/host/validate.h"

#include <algorithm>
#include <cstdint>

namespace nbdcage::frontend {

namespace {
bool isPowerOf2(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

chain::ExportInfo validateExport(ipc::schema::ExportInfo::Reader e) {
  chain::ExportInfo x;
  x.size = e.getSize();
  if (x.size > static_cast<uint64_t>(INT64_MAX)) throw HostError("the plugin reported an impossible size");
  x.canWrite = e.getCanWrite();
  x.canFlush = e.getCanFlush();
  x.isRotational = e.getIsRotational();
  x.canTrim = e.getCanTrim() && x.canWrite;
  x.canZero = e.getCanZero() && x.canWrite;
  x.canFua = x.canWrite ? std::min<uint8_t>(e.getCanFua(), 2) : 0;
  x.canMultiConn = e.getCanMultiConn();
  x.canExtents = e.getCanExtents();
  x.canCache = std::min<uint8_t>(e.getCanCache(), 2);
  x.canFastZero = e.getCanFastZero() && x.canZero;
  uint32_t mn = e.getBlockMin(), pref = e.getBlockPreferred(), mx = e.getBlockMax();
  if (mn != 0 || pref != 0 || mx != 0) {
    bool ok = isPowerOf2(mn) && mn <= 65536 && isPowerOf2(pref) && pref >= std::max<uint32_t>(mn, 512) &&
              pref <= (32u << 20) && mx >= pref && (mx % mn) == 0;
    if (!ok) throw HostError("the plugin reported invalid block size constraints");
    x.blockMin = mn;
    x.blockPreferred = pref;
    x.blockMax = std::min<uint32_t>(mx, 32u << 20);
  }
  auto d = e.getDescription();
  if (d.size() > 4096) throw HostError("the plugin's export description is longer than 4096 bytes");
  x.description = std::string(d.cStr(), d.size());
  return x;
}

std::string validateExportName(capnp::Text::Reader name) {
  std::string out(name.cStr(), name.size());
  if (out.size() > 4096) throw HostError("the plugin's default export name is longer than 4096 bytes");
  if (out.find('\0') != std::string::npos) throw HostError("the plugin's default export name holds a NUL byte");
  return out;
}

std::vector<std::pair<std::string, std::string>> validateExportList(
    capnp::List<ipc::schema::ExportEntry>::Reader exports) {
  if (exports.size() > 10000) throw HostError("the plugin listed too many exports");
  std::vector<std::pair<std::string, std::string>> out;
  for (auto e : exports) {
    if (e.getName().size() > 4096 || e.getDescription().size() > 4096)
      throw HostError("the plugin listed an export name or description over 4096 bytes");
    out.emplace_back(std::string(e.getName().cStr(), e.getName().size()),
                     std::string(e.getDescription().cStr(), e.getDescription().size()));
  }
  return out;
}

}  // namespace nbdcage::frontend
