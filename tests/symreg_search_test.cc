// The search: exact recovery of fast Nguyen problems, the same front whatever the thread count, the
// stopping rules, and impossible options.
#include <doctest/doctest.h>

#include "symreg/nguyen.h"
#include "symreg/search.h"
#include "tests/test_files.h"

using namespace kiln::symreg;

namespace {

SearchResult run_nguyen(int id, uint64_t seed, int threads, int generations, bool stop_on_recovery = false) {
  const NguyenProblem& p = nguyen(id);
  NguyenData d = make_nguyen_data(p, 20, seed);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  SearchOptions opt;
  opt.ops = OpSet::parse(nguyen_ops());
  opt.limits.max_complexity = 25;
  opt.limits.max_depth = 12;
  opt.generations = generations;
  opt.seed = seed;
  opt.threads = threads;
  if (stop_on_recovery)
    opt.stop_when = [&](const std::vector<Candidate>& front) { return recovered(p, front, opt.ops); };
  return search(pb, opt);
}

}  // namespace

TEST_CASE("Nguyen 1, 3, 5, 6 and 8 are recovered exactly (complexity <= the formula's, R^2 >= 0.99999)") {
  OpSet ops = OpSet::parse(nguyen_ops());
  for (int id : {1, 3, 5, 6, 8}) {
    SearchResult r = run_nguyen(id, 1, 1, 1000, true);
    int k = recovered_index(nguyen(id), r.front, ops);
    INFO("N", id, " front best: ", to_infix(r.front.back().tree, {"x"}));
    CHECK(k >= 0);
  }
}

TEST_CASE("same seed, 1 thread vs 2 threads: identical fronts") {
  SearchResult a = run_nguyen(6, 3, 1, 15), b = run_nguyen(6, 3, 2, 15);
  REQUIRE(a.front.size() == b.front.size());
  for (size_t i = 0; i < a.front.size(); ++i) {
    CHECK(a.front[i].tree == b.front[i].tree);
    CHECK(a.front[i].loss == b.front[i].loss);
    CHECK(a.front[i].complexity == b.front[i].complexity);
  }
  CHECK(a.candidates == b.candidates);
  // And a different seed explores differently.
  SearchResult c = run_nguyen(6, 4, 1, 15);
  bool same = c.front.size() == a.front.size();
  for (size_t i = 0; same && i < a.front.size(); ++i) same = c.front[i].tree == a.front[i].tree;
  CHECK_FALSE(same);
}

TEST_CASE("restart on stagnation: islands start again, the same whatever the thread count") {
  // With only sin, x^3 + x^2 + x cannot be fitted and the front soon stops improving.
  NguyenData d = make_nguyen_data(nguyen(1), 20, 1);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  SearchOptions opt;
  opt.ops = OpSet::parse("+,sin");
  opt.generations = 60;
  opt.stagnation = 8;
  SearchResult a = search(pb, opt);
  CHECK(a.restarts >= 2);
  opt.threads = 2;
  SearchResult b = search(pb, opt);
  CHECK(b.restarts == a.restarts);
  REQUIRE(a.front.size() == b.front.size());
  for (size_t i = 0; i < a.front.size(); ++i) CHECK(a.front[i].tree == b.front[i].tree);
  // The hall of fame is not reset by a restart: the final front is at least as good as the front after 9
  // generations, and a.restarts >= 2 puts a restart after generation 9 (restarts are >= 8 apart).
  opt.threads = 1, opt.stagnation = 0;
  SearchResult none = search(pb, opt);
  CHECK(none.restarts == 0);
  opt.stagnation = 8, opt.generations = 9;
  double before = search(pb, opt).front.back().loss;
  CHECK(a.front.back().loss <= before);
}

TEST_CASE("the front is Pareto: complexity increases, loss decreases; limits hold") {
  SearchResult r = run_nguyen(2, 1, 1, 10);
  OpSet ops = OpSet::parse(nguyen_ops());
  for (size_t i = 1; i < r.front.size(); ++i) {
    CHECK(r.front[i].complexity > r.front[i - 1].complexity);
    CHECK(r.front[i].loss < r.front[i - 1].loss);
  }
  for (const Candidate& c : r.front) {
    CHECK(c.complexity <= 25);
    CHECK(complexity(c.tree, ops) == c.complexity);
  }
}

TEST_CASE("stopping: target loss, time limit, generations") {
  const NguyenProblem& p = nguyen(1);
  NguyenData d = make_nguyen_data(p, 20, 1);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  SearchOptions opt;
  opt.ops = OpSet::parse("+,*");
  opt.generations = 0;
  opt.target_loss = 1e-10;
  opt.time_limit = 20;
  int calls = 0;
  SearchResult r = search(pb, opt, [&](const GenerationStats& g) {
    ++calls;
    CHECK(g.generation == calls);
    CHECK(g.node_evals_per_second >= 0);
  });
  CHECK(r.stop_reason == "target loss");
  CHECK(r.front.back().loss <= 1e-10);
  CHECK(calls == r.generations);
  opt.target_loss = -1, opt.time_limit = 0.3, opt.ops = OpSet::parse("sin");  // cannot fit x^3+x^2+x
  r = search(pb, opt);
  CHECK(r.stop_reason == "time limit");
  CHECK(r.seconds < 30);  // the limit is honoured (a loaded machine may finish the generation late)
  opt.time_limit = 0, opt.generations = 3;
  CHECK(search(pb, opt).generations == 3);
}

TEST_CASE("impossible options are input errors naming the flag and value") {
  NguyenData d = make_nguyen_data(nguyen(1), 20, 1);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  SearchOptions opt;
  opt.limits.max_complexity = 0;
  CHECK_INPUT_ERROR(search(pb, opt), "--max-complexity", "0");
  opt = SearchOptions{};
  opt.generations = 0;
  CHECK_INPUT_ERROR(search(pb, opt), "--generations", "never stop");
  opt = SearchOptions{};
  opt.population = 1;
  CHECK_INPUT_ERROR(search(pb, opt), "--population", "1");
  NguyenData one = make_nguyen_data(nguyen(1), 1, 1);
  Problem tiny{&one.x, one.y, {}, LossKind::kMse};
  CHECK_INPUT_ERROR(search(tiny, SearchOptions{}), "--data", "1 rows");
}
