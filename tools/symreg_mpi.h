// `kiln symreg` over MPI ranks: symreg's Exchange (symreg/exchange.h) over dist::Comm, and how the ranks
// fail together. `mpirun -np N symreg ... --islands-per-rank K` evolves N * K islands, K per rank, and finds
// the front one process with --islands N*K finds (same seed). Every rank reads the flags and the data; rank
// 0 alone prints and writes.
//
// Failing together: every rank meets the others once before the search (setup_done: bad input on any rank,
// e.g. a data file missing on one node or rank 0's --out, stops every rank with one message from rank 0);
// a rank that fails before that point meets them in finish_rank instead. A failure during the search ends
// every rank (MPI_Abort): the others would wait for it forever.
//
//   RankPhase phase = RankPhase::kSetup;
//   int status = run_tool(..., [&] { ...; if (!setup_done(comm, phase)) return 1; search ...; });
//   return finish_rank(comm, phase, status, rank_stderr);
#pragma once
#include <string>
#include <vector>

#include "dist/comm.h"
#include "symreg/exchange.h"

namespace kiln::symreg {

class CommExchange : public Exchange {
 public:
  explicit CommExchange(dist::Comm& comm) : comm_(comm) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  std::vector<std::string> allgather(const std::string& bytes) override { return comm_.allgather(bytes); }
  double max(double v) override { return comm_.max(v); }

 private:
  dist::Comm& comm_;
};

enum class RankPhase { kSetup, kSearch, kDone };

// Collective, once, when this rank's setup succeeded: true when every rank's did (phase becomes kSearch).
// Else false, and rank 0 throws InputError naming the first rank that failed and its message.
bool setup_done(dist::Comm& comm, RankPhase& phase);

// After the command body returned `status` (this rank's stderr held in `message` for ranks > 0): meets the
// other ranks at their setup_done when this rank failed during its setup, MPI_Abort when it failed during
// the search (after printing `message`). Returns the exit status.
int finish_rank(dist::Comm& comm, RankPhase phase, int status, const std::string& message);

}  // namespace kiln::symreg
