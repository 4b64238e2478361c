// kiln scan's search space: grid order, random and NSGA-II proposals (deterministic, in range, no
// repeats), non-dominated sorting and the front against hand-worked sets, configs with the values set, and
// bad scan configs as one-line errors naming the file and key.
#include "tools/scan_space.h"

#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "tools/scan_trial.h"

using namespace kiln;
using namespace kiln::scan;

namespace {

ScanSpec spec(const std::string& yaml) { return parse_scan(Config::parse(yaml, "scan.yaml")); }

Result result(int id, int gen, double acc, double cost, const std::vector<std::string>& values = {}) {
  Result r;
  r.trial.id = id, r.trial.generation = gen, r.trial.values = values;
  r.ok = true;
  r.metrics = {{"acc", acc}, {"cost", cost}};
  return r;
}

const char* kNsga = R"(
base: b.yaml
search: {type: nsga2, population: 6, generations: 3, seed: 5}
parameters:
  a: {min: 1.0e-6, max: 1.0e-2, scale: log}
  b: {min: 4, max: 64, type: int}
  c: [x, y, z]
objectives: [{metric: acc, goal: max}, {metric: cost, goal: min}]
)";

}  // namespace

TEST_CASE("grid: every point once, the last parameter fastest, values as written") {
  ScanSpec s = spec("base: b.yaml\nsearch: {type: grid}\nparameters: {p: [1, 2], q: [a, b, c]}\n");
  auto t = initial_trials(s);
  REQUIRE(t.size() == 6);
  CHECK(s.total_trials() == 6);
  CHECK(t[0].values == std::vector<std::string>{"1", "a"});
  CHECK(t[1].values == std::vector<std::string>{"1", "b"});
  CHECK(t[3].values == std::vector<std::string>{"2", "a"});
  CHECK(t[5].values == std::vector<std::string>{"2", "c"});
  for (int i = 0; i < 6; ++i) CHECK(t[static_cast<size_t>(i)].id == i);
  // The default objective: validation accuracy, maximised.
  REQUIRE(s.objectives.size() == 1);
  CHECK(s.objectives[0].metric == "final_val_accuracy");
  CHECK(s.objectives[0].maximize);
}

TEST_CASE("random: the same trials for the same seed, in range, log and int scales honoured") {
  const std::string y =
      "base: b.yaml\nsearch: {type: random, trials: 200, seed: 3}\n"
      "parameters: {lr: {min: 1.0e-5, max: 1.0e-1, scale: log}, n: {min: 2, max: 9, type: int}}\n";
  auto a = initial_trials(spec(y)), b = initial_trials(spec(y));
  REQUIRE(a.size() == 200);
  int low_decade = 0;
  std::set<double> ints;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].values == b[i].values);
    CHECK(a[i].genes[0] >= 1e-5);
    CHECK(a[i].genes[0] <= 1e-1);
    low_decade += a[i].genes[0] < 1e-4;  // log scale: about a quarter in [1e-5, 1e-4)
    CHECK(a[i].genes[1] == std::round(a[i].genes[1]));
    ints.insert(a[i].genes[1]);
    CHECK(std::stod(a[i].values[0]) == a[i].genes[0]);  // the text reads back as the same double
  }
  CHECK(low_decade > 25);
  CHECK(low_decade < 80);
  CHECK(ints.size() == 8);  // 2..9 all reached
  auto c = initial_trials(spec(y.substr(0, y.find("seed: 3")) +
                               "seed: 4}\nparameters: {lr: {min: 1.0e-5, "
                               "max: 1.0e-1, scale: log}, n: {min: 2, max: 9, type: int}}\n"));
  CHECK(c[0].values != a[0].values);
}

TEST_CASE("non-dominated sort and the front on a hand-worked set") {
  // Minimise both: (1,5) (2,2) (5,1) are the front; (3,3) is dominated by (2,2); (6,6) by everything.
  std::vector<std::vector<double>> f{{1, 5}, {3, 3}, {2, 2}, {6, 6}, {5, 1}};
  std::vector<int> rank;
  std::vector<double> crowd;
  nondominated_sort(f, &rank, &crowd);
  CHECK(rank == std::vector<int>{0, 1, 0, 2, 0});
  CHECK(std::isinf(crowd[0]));
  CHECK(std::isinf(crowd[4]));
  CHECK(crowd[2] == doctest::Approx((5.0 - 1.0) / 4 + (5.0 - 1.0) / 4));  // neighbours' gaps / spans
  ScanSpec s = spec(kNsga);
  std::vector<Result> rs{result(0, 0, 0.9, 100), result(1, 0, 0.8, 100), result(2, 0, 0.95, 300),
                         result(3, 0, 0.5, 10)};
  rs.push_back(result(4, 0, 0.99, 1));
  rs[4].ok = false;  // a failed trial is never on the front
  auto front = pareto_front(s, rs);
  // Ordered by the first objective (minimised: -accuracy), so the most accurate first.
  CHECK(front == std::vector<size_t>{2, 0, 3});
}

TEST_CASE("nsga2: generation g is a function of the finished trials, in range, new ids, no repeats") {
  ScanSpec s = spec(kNsga);
  auto g0 = initial_trials(s);
  REQUIRE(g0.size() == 6);
  std::vector<Result> done;
  for (const auto& t : g0) {
    Result r = result(t.id, 0, 1 - std::log10(t.genes[0]) / -10, t.genes[1]);
    r.trial = t;
    done.push_back(r);
  }
  auto g1 = nsga2_generation(s, 1, done), again = nsga2_generation(s, 1, done);
  REQUIRE(g1.size() == 6);
  std::set<std::vector<std::string>> seen;
  for (const auto& r : done) seen.insert(r.trial.values);
  for (size_t i = 0; i < g1.size(); ++i) {
    CHECK(g1[i].id == 6 + static_cast<int>(i));
    CHECK(g1[i].generation == 1);
    CHECK(g1[i].values == again[i].values);
    CHECK(g1[i].genes[0] >= 1e-6);
    CHECK(g1[i].genes[0] <= 1e-2);
    CHECK(g1[i].genes[1] >= 4);
    CHECK(g1[i].genes[1] <= 64);
    CHECK(g1[i].genes[1] == std::round(g1[i].genes[1]));
    CHECK((g1[i].values[2] == "x" || g1[i].values[2] == "y" || g1[i].values[2] == "z"));
    CHECK(seen.insert(g1[i].values).second);  // not a repeat of any trial so far
  }
  // Selection: of 12 finished trials, the 6 with small b dominate the 6 with large b (same accuracy, lower
  // cost), so the survivors, and the children bred from them by SBX (children near their parents), have
  // small b; polynomial mutation moves a gene a little.
  std::vector<Result> pool;
  for (int i = 0; i < 12; ++i) {
    Trial t;
    t.id = i, t.generation = 0;
    t.genes = {1e-4, static_cast<double>(i < 6 ? 4 + i : 54 + i - 6), static_cast<double>(i % 3)};
    set_values(s, &t);
    Result r = result(i, 0, 0.9, t.genes[1]);
    r.trial = t;
    pool.push_back(r);
  }
  int small = 0;
  for (const auto& c : nsga2_generation(s, 1, pool)) small += c.genes[1] < 30;
  CHECK(small >= 5);
}

TEST_CASE("trial_config sets nested keys, list items and new keys, and drops output_dir") {
  YAML::Node base = YAML::Load(
      "output_dir: runs/x\nmodel: {layers: [{type: dense, units: 8}, {type: dense, units: 2}]}\n"
      "training: {epochs: 3}\n");
  ScanSpec s = spec(
      "base: b.yaml\nsearch: {type: grid}\nparameters: {model.layers.0.units: [16], "
      "training.optimizer.learning_rate: [0.01], compression.quantization.hgq_beta: [1.0e-5]}\n");
  YAML::Node c = trial_config(base, s, initial_trials(s)[0]);
  CHECK(c["model"]["layers"][0]["units"].as<int>() == 16);
  CHECK(c["model"]["layers"][1]["units"].as<int>() == 2);
  CHECK(c["training"]["optimizer"]["learning_rate"].as<double>() == 0.01);
  CHECK(c["training"]["epochs"].as<int>() == 3);
  CHECK(c["compression"]["quantization"]["hgq_beta"].as<double>() == 1e-5);
  CHECK(!c["output_dir"]);
  CHECK(base["model"]["layers"][0]["units"].as<int>() == 8);  // the base is not changed
  ScanSpec past = spec("base: b.yaml\nsearch: {type: grid}\nparameters: {model.layers.5.units: [16]}\n");
  CHECK_THROWS_WITH_AS(trial_config(base, past, initial_trials(past)[0]),
                       doctest::Contains("index 5 is past the end of the list"), InputError);
  ScanSpec under = spec("base: b.yaml\nsearch: {type: grid}\nparameters: {training.epochs.x: [1]}\n");
  CHECK_THROWS_WITH_AS(trial_config(base, under, initial_trials(under)[0]),
                       doctest::Contains("not a mapping"), InputError);
}

TEST_CASE("bad scan configs: one line naming the file and the key") {
  auto bad = [](const std::string& y, const std::string& what) {
    CHECK_THROWS_WITH_AS(spec(y), doctest::Contains(what.c_str()), InputError);
  };
  bad("search: {type: grid}\nparameters: {a: [1]}\n", "base");
  bad("base: b.yaml\nsearch: {type: annealing}\nparameters: {a: [1]}\n", "annealing");
  bad("base: b.yaml\nsearch: {type: grid}\nparameters: {a: {min: 0, max: 1}}\n", "needs a list of values");
  bad("base: b.yaml\nsearch: {type: random, trials: 3}\nparameters: {a: {min: 2, max: 1}}\n", "min < max");
  bad("base: b.yaml\nsearch: {type: random, trials: 3}\nparameters: {a: {min: 0, max: 1, scale: log}}\n",
      "log scale needs min > 0");
  bad("base: b.yaml\nsearch: {type: random, trials: 3}\nparameters: {a: []}\n", "empty");
  bad("base: b.yaml\nsearch: {type: nsga2, population: 4, generations: 2}\nparameters: {a: [1, 2]}\n",
      "needs 'objectives'");
  bad("base: b.yaml\nsearch: {type: grid}\nparameters: {a: [1]}\nobjectives: [{metric: acc, goal: up}]\n",
      "max or min");
  bad("base: b.yaml\nsearch: {type: grid}\nparameters: {a: [1]}\nthreds_per_trial: 2\n", "threds_per_trial");
  bad("base: b.yaml\nsearch: {type: grid}\nparameters: {}\n", "at least one");
}

TEST_CASE("messages between ranks round-trip exactly") {
  Result r = result(12, 2, 0.1 + 0.2, 1.0 / 3, {"1e-05", "[1, 2]"});
  r.trial.genes = {1e-5, 0.7};
  r.error = "a \"quoted\", comma";
  r.seconds = 1.25, r.rank = 3;
  Result b = result_from_json(result_to_json(r));
  CHECK(b.trial.id == 12);
  CHECK(b.trial.generation == 2);
  CHECK(b.metrics == r.metrics);  // doubles bit for bit
  CHECK(b.trial.values == r.trial.values);
  CHECK(b.trial.genes == r.trial.genes);
  CHECK(b.error == r.error);
  CHECK(b.rank == 3);
  TrialOrder o{7, "model: {}\n# \xc3\xa9\n"};
  TrialOrder p = order_from_json(order_to_json(o));
  CHECK(p.id == 7);
  CHECK(p.config_yaml == o.config_yaml);
}
