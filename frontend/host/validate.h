// What a plugin host answers over RPC, checked before anything else sees
// it: the host is untrusted (a hostile plugin writes these answers).
// Each function returns the checked value or throws HostError saying what
// was wrong, in words a client may see.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "frontend/chain/next.h"
#include "host.capnp.h"

namespace nbdcage::frontend {

// A failure that a client should see as an option error (with this text).
class HostError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An open's answer: the export's size, flags, block sizes, description.
chain::ExportInfo validateExport(ipc::schema::ExportInfo::Reader e);

// default_export's answer: a name of at most 4096 bytes, without NUL.
std::string validateExportName(capnp::Text::Reader name);

// list_exports' answer: at most 10000 (name, description) pairs, each at
// most 4096 bytes.
std::vector<std::pair<std::string, std::string>> validateExportList(
    capnp::List<ipc::schema::ExportEntry>::Reader exports);

}  // namespace nbdcage::frontend
