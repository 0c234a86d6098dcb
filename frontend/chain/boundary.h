// The one place every hop of the chain passes through, in both directions.
//
//   stage above --submit--> Boundary --submit (done = Boundary)--> stage below
//   stage above <-complete-- Boundary <--complete-------------------- stage below
//
// Down: the request must be one the stage below can take (inside the
// export, a buffer big enough, an operation and flags its ExportInfo
// allows); one that is not is a bug in the stage above: it is logged and
// fails with EINVAL, and the stage below never sees it.
// Up: a result is 0 or a real errno (anything else becomes EIO), a
// successful extents request has at least one extent, and the stage above
// gets back exactly the Io it submitted.
#pragma once

#include <array>
#include <string>

#include "frontend/chain/next.h"

namespace nbdcage::chain {

// 0, or the errno a request that breaks the rules gets; `why` says which rule.
int checkIo(const Io& io, const ExportInfo& below, const char** why);

class Boundary final : public Next, private Completer {
 public:
  // `above` names the caller in messages ("the client", "filter exitlast").
  Boundary(Next& below, std::string above) : below_(below), above_(std::move(above)) {}

  const ExportInfo& info() const override { return below_.info(); }
  std::optional<Slot> reserve(uint32_t bufLen) override { return below_.reserve(bufLen); }
  void release(const Slot& slot) override;
  void submit(const Io& io) override;

 private:
  void complete(const Io& io, int error, uint32_t extents) override;

  Next& below_;
  std::string above_;
  std::array<Io, ipc::kRingEntries> submitted_{};  // by tag, as the stage above sent it
  std::array<bool, ipc::kRingEntries> inFlight_{};
};

}  // namespace nbdcage::chain
