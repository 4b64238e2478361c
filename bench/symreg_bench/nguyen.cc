// The Nguyen suite N1-N12, 10 seeds each, one thread: exact-recovery rate (nguyen.h: an expression on the
// front with complexity <= the reference's and R^2 >= 0.99999 on 1000 fresh points) and time per run.
// A run stops as soon as its front recovers the formula (judged on the training data, confirmed on fresh
// points), or at the time limit. The last line counts the fronts holding log(exp(u)) (which is u).
//
//   bazel run //bench/symreg_bench:nguyen [-- --problems 1,2,7 --seeds 10 --first-seed 1 --time-limit 60
//                                            --generations 0 --stagnation G --verbose]
#include "symreg/nguyen.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "symreg/search.h"

using namespace kiln::symreg;

int main(int argc, char** argv) {
  std::vector<int> problems = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  int seeds = 10, first_seed = 1;
  double time_limit = 60;
  int generations = 0;  // 0: until recovery or the time limit (a fixed count is for profiling)
  bool verbose = false;
  int stagnation = SearchOptions().stagnation;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--verbose") verbose = true;
    if (i + 1 >= argc) break;
    if (a == "--seeds") seeds = std::atoi(argv[i + 1]);
    if (a == "--first-seed") first_seed = std::atoi(argv[i + 1]);
    if (a == "--time-limit") time_limit = std::atof(argv[i + 1]);
    if (a == "--generations") generations = std::atoi(argv[i + 1]);
    if (a == "--stagnation") stagnation = std::atoi(argv[i + 1]);
    if (a == "--problems") {
      problems.clear();
      std::stringstream ss(argv[i + 1]);
      std::string item;
      while (std::getline(ss, item, ',')) problems.push_back(std::atoi(item.c_str()));
    }
  }
  std::printf("Nguyen suite, %d seeds, 20 training points, ops %s, 1 thread, time limit %.0f s per run\n",
              seeds, nguyen_ops(), time_limit);
  std::printf("%-4s %-24s %6s %10s %10s %10s  %s\n", "id", "formula", "budget", "recovered", "mean s",
              "max s", "example (last recovered seed)");
  int total_ok = 0, total = 0, log_exp_fronts = 0;
  for (int id : problems) {
    const NguyenProblem& p = nguyen(id);
    SearchOptions opt;
    opt.ops = OpSet::parse(nguyen_ops());
    int budget = complexity(parse_expr(p.reference, {}), opt.ops);
    opt.limits.max_complexity = std::max(25, budget);
    opt.limits.max_depth = 12;
    opt.generations = generations;
    opt.time_limit = time_limit;
    opt.threads = 1;
    opt.stagnation = stagnation;
    int ok = 0;
    double sum_s = 0, max_s = 0;
    std::string example = "-";
    for (int seed = first_seed; seed < first_seed + seeds; ++seed) {
      NguyenData d = make_nguyen_data(p, 20, static_cast<uint64_t>(seed));
      Problem pb{&d.x, d.y, {}, LossKind::kMse};
      opt.seed = static_cast<uint64_t>(seed);
      // Stop once a front entry within the budget fits the training points (R^2 >= 1 - 1e-7).
      double var = 0, mean = 0;
      for (float v : d.y) mean += v / d.y.size();
      for (float v : d.y) var += (v - mean) * (v - mean) / d.y.size();
      opt.stop_when = [&](const std::vector<Candidate>& front) {
        for (const Candidate& c : front)
          if (c.complexity <= budget && c.loss <= 1e-7 * var && recovered(p, {c}, opt.ops)) return true;
        return false;
      };
      auto t0 = std::chrono::steady_clock::now();
      int last_restart = 0, restarts = 0;  // the generation of the last restart on stagnation
      SearchResult r = search(pb, opt, [&](const GenerationStats& g) {
        if (g.restarts != restarts) restarts = g.restarts, last_restart = g.generation;
      });
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      int idx = recovered_index(p, r.front, opt.ops);
      for (const Candidate& c : r.front)
        if (has_log_of_exp(c.tree)) {
          ++log_exp_fronts;
          std::printf("  N%d seed %d: log(exp(.)) on the front: %s\n", id, seed,
                      to_infix(c.tree, {"x", "y"}).c_str());
          break;
        }
      if (idx >= 0) ++ok, example = to_infix(r.front[static_cast<size_t>(idx)].tree, {"x", "y"});
      sum_s += s, max_s = std::max(max_s, s);
      if (verbose) {
        std::printf("  N%d seed %d: %s in %.2f s, %d generations, %d restarts (last at %d); %s\n", id, seed,
                    idx >= 0 ? "recovered" : "missed", s, r.generations, r.restarts, last_restart,
                    to_infix(r.front[static_cast<size_t>(idx >= 0 ? idx : 0)].tree, {"x", "y"}).c_str());
        // The simple end of the front, where a miss shows what the search settled on instead.
        for (const Candidate& c : r.front)
          if (idx < 0 && c.complexity <= budget + 6)
            std::printf("      %3d  %-10.3g %s\n", c.complexity, c.loss,
                        to_infix(c.tree, {"x", "y"}).c_str());
      }
      std::fflush(stdout);
    }
    total_ok += ok, total += seeds;
    std::printf("N%-3d %-24s %6d %7d/%-2d %10.2f %10.2f  %s\n", id, p.formula.c_str(), budget, ok, seeds,
                sum_s / seeds, max_s, example.c_str());
    std::fflush(stdout);
  }
  std::printf("total: %d/%d runs recovered\n", total_ok, total);
  std::printf("fronts with log(exp(.)): %d of %d\n", log_exp_fronts, total);
  return 0;
}
