// A scan's search space and the trials it proposes (//tools:scan).
//
//   ScanSpec s = parse_scan(Config::load_file("data/scan_digits_beta.yaml"));
//   std::vector<Trial> t = initial_trials(s);            // grid: every point; random: `trials` samples;
//                                                        // nsga2: generation 0 (`population` samples)
//   std::vector<Trial> g1 = nsga2_generation(s, 1, done);  // from the finished trials of generations < 1
//   YAML::Node c = trial_config(base, s, t[0]);          // the base config with t[0]'s values set
//
// Every proposal is a pure function of the scan config and (nsga2) of the finished trials' metrics, so a
// rerun proposes the same trials (resume) and any rank may run any trial.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/config.h"

namespace kiln::scan {

// One scanned key: a dotted path into the training config (list items by index: model.layers.0.units)
// with either a list of values (YAML text) or a numeric range.
struct Param {
  std::string path;
  std::vector<std::string> values;  // a list; empty for a range
  double lo = 0, hi = 0;
  bool log = false, integer = false;
  bool is_range() const { return values.empty(); }
};

struct Objective {
  std::string metric;  // a key of metrics.json, or multiplications / nonzero_multiplications / flash_bytes
  bool maximize = false;
};

struct ScanSpec {
  std::string file;                     // the scan config
  std::string base;                     // the training config scanned
  std::string type = "grid";            // grid | random | nsga2
  int trials = 0;                       // random: how many
  int population = 0, generations = 0;  // nsga2
  uint64_t seed = 1;
  int threads = 1;             // OpenMP threads of each trial
  std::string keep = "front";  // checkpoints kept at the end: front | all
  std::vector<Param> params;
  std::vector<Objective> objectives;  // >= 1; the front is over all of them
  int total_trials() const;           // trials the whole scan runs
};

// One proposed training run: genes[i] is param i's value (a range: the number; a list: the index).
struct Trial {
  int id = 0, generation = 0;
  std::vector<double> genes;
  std::vector<std::string> values;  // YAML text of each param's value, as written into the config
};

// A finished trial, as the journal and scan.csv hold it.
struct Result {
  Trial trial;
  bool ok = false;
  std::string error;
  double seconds = 0;
  int rank = 0;
  std::map<std::string, double> metrics;
};

ScanSpec parse_scan(const Config& c);  // InputError naming the file, key and value

std::vector<Trial> initial_trials(const ScanSpec& s);
// Generation g (>= 1) of nsga2: `population` offspring of the best `population` finished trials
// (non-dominated rank, then crowding distance) by binary tournament, SBX crossover and polynomial mutation
// on ranges, uniform crossover and reset on lists. Ids continue after generation g-1's.
std::vector<Trial> nsga2_generation(const ScanSpec& s, int g, const std::vector<Result>& finished);

// Fills t->values from t->genes.
void set_values(const ScanSpec& s, Trial* t);

// The base config with the trial's values set and output_dir removed; InputError naming the path when a
// key cannot be set (an index past a list's end, a key under a scalar).
YAML::Node trial_config(const YAML::Node& base, const ScanSpec& s, const Trial& t);

// Objective values to minimise (maximised ones negated); false if a metric is missing.
bool objective_vector(const ScanSpec& s, const Result& r, std::vector<double>* out);
// Non-dominated sort: rank[i] = 0 for the front, 1 for the next, ...; crowding within each rank.
void nondominated_sort(const std::vector<std::vector<double>>& f, std::vector<int>* rank,
                       std::vector<double>* crowding);
// Indices of the ok results on the combined Pareto front, ordered by the first objective.
std::vector<size_t> pareto_front(const ScanSpec& s, const std::vector<Result>& results);

// The random streams of the proposals: symreg::Rng::derive(seed, {kStreamRandom, trial id}) for random
// trials (and NSGA-II's first generation), {kStreamNsga2, generation} for each later generation.
constexpr uint64_t kStreamRandom = 1, kStreamNsga2 = 2;

// A range parameter's value at u in [0, 1] of its scale (log or linear; int ranges rounded), clamped to
// [min, max], and the inverse: random sampling and NSGA-II's variation operators work on u.
double from_unit(const Param& p, double u);
double to_unit(const Param& p, double v);

// Shortest text that reads back as the same double ("1e-06", "0.25", "64").
std::string number_text(double v);

}  // namespace kiln::scan
