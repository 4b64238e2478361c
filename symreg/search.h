// The search: islands of populations evolved in generations, with migration around a ring.
//
// Each generation, every island makes `population` offspring: a parent chosen by tournament (on
// non-domination rank, then crowding, over loss and complexity: NSGA-II), then with probability
// p_crossover a subtree crossover or graft with a second parent, else one mutation (mutate.h); limits are
// enforced by retrying (up to 8 times) and else keeping the parent. The offspring is fitted (fit.h: LM on its
// constants with probability p_optimize, linear scaling always) and simplified. Survivors are the best
// `population` of parents and offspring under NSGA-II (one per shape: duplicates removed). Every
// migration_interval generations each island sends copies of its `migrants` best to the next island and
// receives hall-of-fame entries (the best expression at some complexity). The hall of fame collects every
// offspring. When the front has made no progress (no complexity's loss halved, none added) for
// `stagnation` generations, every island restarts from fresh random expressions and migration hands out
// only what is found after the restart: a run that settled on a wrong structure gets a fresh start, and
// the hall of fame keeps what it had. On large data the LM iterations see a fixed random subset of
// fit_rows rows.
//
// Determinism: offspring slot s of island i in generation g draws from Rng::derive(seed, {g, i, s}) and
// reads only the previous generation, so the same seed gives the same front whatever the thread count.
// Only the time limit (checked between generations) can make two runs differ.
//
// Several processes: with an Exchange (exchange.h) over R ranks, each rank evolves islands / R of the
// islands and the ranks trade hall-of-fame entries and migrants; the front is the one of a single process
// evolving all the islands (same seed, same total islands), whatever the rank and thread counts.
//
//   SearchOptions opt;  opt.generations = 100;
//   SearchResult r = search(problem, opt, [](const GenerationStats& g) { ...print... });
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "symreg/exchange.h"
#include "symreg/fit.h"
#include "symreg/front.h"
#include "symreg/mutate.h"

namespace kiln::symreg {

struct SearchOptions {
  OpSet ops;
  Limits limits;
  int islands = 4;       // in all: with an Exchange of R ranks, islands / R per rank (a multiple of R)
  int population = 100;  // per island
  int generations = 100;
  double time_limit = 0;    // seconds; 0 = none
  double target_loss = -1;  // stop once the best loss is <= this; < 0 = never
  int tournament = 5;
  double p_crossover = 0.3;
  double p_graft = 0.5;     // of the crossovers, the share that grafts instead (mutate.h)
  double p_optimize = 1.0;  // probability that an offspring gets LM on its constants
  FitOptions fit;
  int migration_interval = 10;
  int migrants = 5;         // from the neighbouring island, plus up to this many hall-of-fame entries
  int stagnation = 100;     // generations without progress of the front before every island restarts
  int64_t fit_rows = 2048;  // LM runs on a fixed random subset of this many rows (the loss on all rows)
  uint64_t seed = 1;
  int threads = 1;  // OpenMP threads; 0 = all
  // Losses at or below this are ties on the front (front.h); < 0: the targets' float noise floor
  // (loss.h's noise_floor_loss), 0: none (every lower loss is better, as in PySR).
  double loss_floor = -1;
  // Optional: checked on the front after every generation; true stops the search ("stop condition").
  std::function<bool(const std::vector<Candidate>& front)> stop_when;
  // Optional: the ranks of a search over several processes (every rank calls search() with the same
  // options and data); null = this process alone.
  Exchange* exchange = nullptr;
};

struct GenerationStats {
  int generation = 0;
  double best_loss = 0;
  size_t front_size = 0;
  double node_evals_per_second = 0;  // tree length x rows per second, fitting included, all ranks
  double seconds = 0;                // since the start
  int64_t candidates = 0;            // offspring evaluated so far
  int restarts = 0;                  // restarts on stagnation so far
};

struct SearchResult {
  std::vector<Candidate> front;
  int generations = 0;
  double seconds = 0;
  double node_evals = 0;    // all ranks
  int64_t candidates = 0;   // all ranks
  std::string stop_reason;  // "generations", "time limit", "target loss", "stop condition"
  int restarts = 0;         // restarts on stagnation
  double loss_floor = 0;    // the floor the front was built with: pass it to select()
};

// Checks the options against the problem; InputError naming the flag and value when impossible (e.g. a
// max complexity below 1, no operators, fewer than 2 rows).
void check_options(const SearchOptions& opt, const Problem& pb);

SearchResult search(const Problem& pb, const SearchOptions& opt,
                    const std::function<void(const GenerationStats&)>& on_generation = {});

}  // namespace kiln::symreg
