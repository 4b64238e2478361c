#include "tools/symreg_mpi.h"

#include <iostream>

#include "engine/check.h"

namespace kiln::symreg {

bool setup_done(dist::Comm& comm, RankPhase& phase) {
  phase = RankPhase::kSearch;
  if (!comm.distributed()) return true;
  std::vector<std::string> errors = comm.allgather("");
  for (size_t r = 0; r < errors.size(); ++r) {
    if (errors[r].empty()) continue;
    phase = RankPhase::kDone;
    if (comm.rank() == 0) throw InputError("rank " + std::to_string(r) + ": " + errors[r]);
    return false;
  }
  return true;
}

int finish_rank(dist::Comm& comm, RankPhase phase, int status, const std::string& message) {
  if (!comm.distributed() || status == 0) return status;
  switch (phase) {
    case RankPhase::kSetup: {
      // The one-line message without its "kiln symreg: error: " and newline; never empty (empty = success).
      std::string m = message;
      const std::string prefix = "kiln symreg: error: ";
      if (m.rfind(prefix, 0) == 0) m = m.substr(prefix.size());
      while (!m.empty() && m.back() == '\n') m.pop_back();
      comm.allgather(m.empty() ? "failed (exit status " + std::to_string(status) + ")" : m);
      return status;
    }
    case RankPhase::kSearch:
      std::cerr << message << std::flush;
      comm.abort(status);
    case RankPhase::kDone:
      return status;
  }
  return status;
}

}  // namespace kiln::symreg
