// Evaluator throughput in node evaluations per second, Operon's metric: sum over trees of (tree length x
// rows) / seconds, for 1000 random trees of length <= 64 on 12,800 rows x 10 features (uniform [-1, 1]),
// per operator set and thread count. Each tree is evaluated `reps` times; the best of 3 rounds is kept.
//
//   bazel run //bench/symreg_bench:throughput [-- --reps 5]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "symreg/eval.h"
#include "symreg/generate.h"
#include "symreg/kernels.h"

using namespace kiln::symreg;

namespace {

double run(const std::vector<Tree>& trees, const Columns& x, int threads, int reps) {
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    double nodes = 0;
#pragma omp parallel num_threads(threads) reduction(+ : nodes)
    {
      Evaluator ev;
      AlignedFloats out(static_cast<size_t>(x.padded()));
#pragma omp for schedule(dynamic, 8)
      for (int i = 0; i < static_cast<int>(trees.size()); ++i)
        for (int r = 0; r < reps; ++r) {
          ev.predict(trees[static_cast<size_t>(i)], x, out.data());
          nodes += static_cast<double>(trees[static_cast<size_t>(i)].size()) * static_cast<double>(x.rows());
        }
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, nodes / s);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 3, max_threads = omp_get_num_procs();
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  const int rows = 12800, features = 10, ntrees = 1000;
  Columns x(rows, features);
  Rng data_rng(7);
  for (int f = 0; f < features; ++f)
    for (int r = 0; r < rows; ++r) x.col(f)[r] = static_cast<float>(data_rng.uniform(-1, 1));

  struct Set {
    const char* name;
    const char* ops;
  } sets[] = {{"arithmetic (+ - * /)", "+,-,*,/"},
              {"arithmetic + sin", "+,-,*,/,sin"},
              {"arithmetic + exp", "+,-,*,/,exp"},
              {"arithmetic + log", "+,-,*,/,log"},
              {"arithmetic + sin, exp, log", "+,-,*,/,sin,exp,log"}};
  std::printf("%d random trees of length <= 64 on %d rows x %d features, float32, batches of %d rows\n",
              ntrees, rows, features, kBatch);
  std::printf("%-28s %8s %22s\n", "operators", "threads", "node evaluations/s");
  for (const Set& s : sets) {
    OpSet ops = OpSet::parse(s.ops);
    Rng rng(42);
    std::vector<Tree> trees;
    double total = 0;
    for (int i = 0; i < ntrees; ++i) {
      trees.push_back(random_tree(rng, ops, features, 1 + rng.below(64), LeafOptions{0.2, -1, 1}));
      total += static_cast<double>(trees.back().size());
    }
    for (int th = 1; th <= max_threads; th *= 2) {
      double tput = run(trees, x, th, reps);
      std::printf("%-28s %8d %22.3e   (mean length %.1f)\n", s.name, th, tput, total / ntrees);
      std::fflush(stdout);
    }
  }
  return 0;
}
