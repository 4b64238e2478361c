// A search spread over several processes (ranks): each rank evolves its share of the islands and trades,
// through an Exchange, what crosses ranks. symreg does not know MPI: tools/symreg_mpi.h implements Exchange
// over dist::Comm, tests/symreg_islands_test.cc over threads.
//
// With N ranks and SearchOptions::islands = N * K, rank r evolves islands r*K .. r*K+K-1 with the same
// random streams (Rng::derive(seed, {g, island, slot})) as one process evolving all N * K islands, and the
// search (search.cc) trades exactly what that process would read across the rank boundaries:
//   every generation  each rank's best new expression per complexity (those that beat its copy of the
//                     hall of fame), offered in rank order: every rank holds the same hall of fame;
//   every migration   each rank's first island's best `migrants`, for the previous rank's last island
//                     (the ring of islands crosses ranks there);
//   every generation  the largest elapsed time, so that every rank stops at the same generation.
// Every decision that reads global state (restart on stagnation, target loss, stop_when) reads the hall of
// fame, the same on every rank, so the ranks stay in lockstep and the front is the one-process front.
//
//   class MyExchange : public Exchange { ... };   // rank(), size(), allgather(), max()
//   opt.islands = ranks * K;  opt.exchange = &my_exchange;  search(pb, opt);   // on every rank
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "symreg/front.h"

namespace kiln::symreg {

class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Collective (every rank calls it, in the same order): every rank's bytes, in rank order.
  virtual std::vector<std::string> allgather(const std::string& bytes) = 0;
  // Collective: the maximum of v over the ranks.
  virtual double max(double v) = 0;
};

// One rank (the default of a search without an Exchange).
class SingleRank : public Exchange {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::vector<std::string> allgather(const std::string& bytes) override { return {bytes}; }
  double max(double v) override { return v; }
};

// Bit-exact binary form of candidates (trees, losses as the doubles' bits) between ranks: cereal's portable
// binary archive (fixed widths, one byte order), so ranks may even differ in endianness. The reader checks
// what it decodes (operators, tree lengths) and throws on truncated or malformed input.
class WireWriter {
 public:
  WireWriter();
  ~WireWriter();
  void f64(double v);
  void i64(int64_t v);
  void candidates(const std::vector<Candidate>& v);
  std::string bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class WireReader {
 public:
  explicit WireReader(const std::string& bytes);
  ~WireReader();
  double f64();
  int64_t i64();
  std::vector<Candidate> candidates();  // KILN_CHECK on truncated or malformed input
  bool done() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::symreg
