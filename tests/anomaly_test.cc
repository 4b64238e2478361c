// Anomaly detection runs: the `data: anomaly:` section and its errors, class names to indices, the
// per-sample scores of a model with known weights (reconstruction error, latent norm, a single output),
// the report's AUC, thresholds and efficiencies on hand-made scores, and load_data's selection (training
// and validation keep the background classes, the test split background and signal with its labels moved
// to anomaly_labels; task autoencoder makes the inputs the targets).
#include "engine/train/anomaly.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/train/run_config.h"
#include "tests/gradcheck.h"
#include "tests/test_files.h"

using namespace kiln;
using kiln::testing::random_tensor;
using kiln::testing::TempDir;

namespace {

train::AnomalyOptions parse(const std::string& yaml) {
  return train::parse_anomaly(Config::parse(yaml, "test.yaml"));
}

// Sets the parameter `name` of m to `values` (row-major, in the parameter's shape).
void set_param(nn::Model& m, const std::string& name, const std::vector<float>& values) {
  for (nn::Parameter* p : m.parameters()) {
    if (p->name != name) continue;
    REQUIRE(p->var.size() == static_cast<int64_t>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) p->var.value()[static_cast<int64_t>(i)] = values[i];
    return;
  }
  FAIL("no parameter " << name);
}

// A 3 -> 2 -> 3 linear autoencoder that keeps features 0 and 1 and drops feature 2: the reconstruction of
// (a, b, c) is (a, b, 0), its MSE c^2 / 3, its latent (a, b).
std::unique_ptr<nn::Model> drop_third_feature(const std::string& extra_layers = "") {
  auto m = nn::Model::from_yaml("layers: [" + extra_layers +
                                    "{type: dense, name: enc, units: 2, use_bias: false}, "
                                    "{type: dense, name: dec, units: 3, use_bias: false}]",
                                {3}, 1);
  set_param(*m, "enc.weight", {1, 0, 0, 1, 0, 0});  // [3, 2]
  set_param(*m, "dec.weight", {1, 0, 0, 0, 1, 0});  // [2, 3]
  return m;
}

}  // namespace

// ---- parse_anomaly and class_indices --------------------------------------------------------------

TEST_CASE("parse_anomaly: class names as strings, the default score, the optional latent layer") {
  CHECK_FALSE(train::parse_anomaly(Config()).enabled());
  auto a = parse("background: [0, 1, 2]\nsignal: [7, 9]\nscore: log_mse\n");
  CHECK(a.enabled());
  CHECK(a.background == std::vector<std::string>{"0", "1", "2"});
  CHECK(a.signal == std::vector<std::string>{"7", "9"});
  CHECK(a.score == "log_mse");
  CHECK(a.where.rfind("test.yaml:", 0) == 0);
  auto d = parse("background: [qcd]\nsignal: [ttbar]\n");
  CHECK(d.score == "mse");
  CHECK(d.latent_layer.empty());
  auto l = parse("background: [qcd]\nsignal: [ttbar]\nscore: latent\nlatent_layer: z_mean\n");
  CHECK(l.score == "latent");
  CHECK(l.latent_layer == "z_mean");
  CHECK(parse("background: [qcd]\nsignal: [ttbar]\nscore: output\n").score == "output");
  CHECK(train::kAnomalyScores == std::vector<std::string>{"mse", "log_mse", "latent", "output"});
}

TEST_CASE("parse_anomaly: each bad key is an InputError naming it") {
  CHECK_INPUT_ERROR(parse("background: [a, b]\nsignal: [c, b]\n"), "test.yaml:2:", "'b'",
                    "both background and signal");
  CHECK_INPUT_ERROR(parse("background: [a]\nsignal: [c]\nscore: entropy\n"), "test.yaml:3:", "'entropy'",
                    "mse", "log_mse", "latent", "output");
  CHECK_INPUT_ERROR(parse("background: [a]\nsignal: [c]\nscore: latent\n"), "test.yaml:3:", "latent_layer");
  CHECK_INPUT_ERROR(parse("background: []\nsignal: [c]\n"), "test.yaml:1:", "background");
  CHECK_INPUT_ERROR(parse("background: [a]\nsignal: []\n"), "test.yaml:2:", "signal");
  CHECK_INPUT_ERROR(parse("background: [a]\n"), "test.yaml", "'signal'");
  CHECK_INPUT_ERROR(parse("signal: [a]\n"), "test.yaml", "'background'");
  CHECK_INPUT_ERROR(parse("background: [a]\nsignal: [c]\nsignl: [d]\n"), "test.yaml:3:", "'signl'", "signal");
  CHECK_INPUT_ERROR(parse("background: a\nsignal: [c]\n"), "test.yaml:1:", "background", "list");
}

TEST_CASE("class_indices: names to indices; a missing class names itself, the role and the valid ones") {
  const std::vector<std::string> names{"g", "q", "t", "w", "z"};
  CHECK(train::class_indices({"t", "g"}, names, "run.yaml:4:3", "signal") == std::vector<int>{2, 0});
  CHECK(train::class_indices({}, names, "run.yaml:4:3", "signal").empty());
  CHECK_INPUT_ERROR(train::class_indices({"q", "h"}, names, "run.yaml:4:3", "signal"), "run.yaml:4:3",
                    "signal", "'h'", "g, q, t, w, z");
  CHECK_INPUT_ERROR(train::class_indices({"7"}, {"0", "1"}, "x.yaml:2:1", "background"), "background", "'7'",
                    "0, 1");
}

// ---- anomaly_scores and check_score --------------------------------------------------------------

TEST_CASE("anomaly_scores: mse, log_mse, latent and output of a model with known weights") {
  auto m = drop_third_feature();
  const Tensor x({5, 3}, {1, 2, 3, -1, 0.5f, -2, 0, 0, 0.5f, 4, -3, 0, 2, 2, 1.5f});
  const auto mse = train::anomaly_scores(*m, x, "mse", "");
  const auto log_mse = train::anomaly_scores(*m, x, "log_mse", "");
  const auto latent = train::anomaly_scores(*m, x, "latent", "enc");
  REQUIRE(mse.size() == 5);
  REQUIRE(log_mse.size() == 5);
  REQUIRE(latent.size() == 5);
  for (int64_t i = 0; i < 5; ++i) {
    const double a = x[i * 3], b = x[i * 3 + 1], c = x[i * 3 + 2];
    INFO("sample ", i);
    CHECK(mse[static_cast<size_t>(i)] == doctest::Approx(c * c / 3));
    if (c != 0) CHECK(log_mse[static_cast<size_t>(i)] == doctest::Approx(std::log(c * c / 3)));
    CHECK(latent[static_cast<size_t>(i)] == doctest::Approx(a * a + b * b));
  }
  // A perfect reconstruction: log of a tiny floor, finite (the report must be able to sort it).
  CHECK(mse[3] == 0.0);
  CHECK(std::isfinite(log_mse[3]));
  CHECK(log_mse[3] < -50);
  // The latent score of the decoder's output: the squared norm of the reconstruction.
  const auto dec = train::anomaly_scores(*m, x, "latent", "dec");
  CHECK(dec[0] == doctest::Approx(1 + 4));

  // A single output: the value itself.
  auto one = nn::Model::from_yaml("layers: [{type: dense, name: s, units: 1, use_bias: false}]", {3}, 1);
  set_param(*one, "s.weight", {1, 2, 3});
  const auto out = train::anomaly_scores(*one, x, "output", "");
  REQUIRE(out.size() == 5);
  for (int64_t i = 0; i < 5; ++i)
    CHECK(out[static_cast<size_t>(i)] == doctest::Approx(x[i * 3] + 2 * x[i * 3 + 1] + 3 * x[i * 3 + 2]));

  CHECK(train::anomaly_scores(*m, Tensor({0, 3}), "mse", "").empty());
}

TEST_CASE("anomaly_scores: batches of any size give the same scores; inference mode (no dropout)") {
  std::mt19937_64 rng(4);
  const Tensor x = random_tensor({37, 3}, rng, -2.f, 2.f);
  auto m = drop_third_feature("{type: dropout, name: drop, rate: 0.5}, ");
  for (const char* score : {"mse", "log_mse", "latent"}) {
    INFO("score ", score);
    const auto all = train::anomaly_scores(*m, x, score, "enc");
    for (int64_t b : {1, 5, 36, 37, 100}) {
      const auto batched = train::anomaly_scores(*m, x, score, "enc", b);
      REQUIRE(batched.size() == all.size());
      for (size_t i = 0; i < all.size(); ++i) CHECK(batched[i] == doctest::Approx(all[i]));
    }
    if (std::string(score) == "mse")
      for (int64_t i = 0; i < 37; ++i)  // dropout off: exactly the drop-third-feature error
        CHECK(all[static_cast<size_t>(i)] == doctest::Approx(x[i * 3 + 2] * x[i * 3 + 2] / 3.0));
  }
}

TEST_CASE(
    "Model::predict: a named layer's outputs, batch by batch as in one pass; an unknown layer is named") {
  std::mt19937_64 rng(6);
  const Tensor x = random_tensor({11, 3}, rng, -2.f, 2.f);
  auto m = drop_third_feature("{type: dropout, name: drop, rate: 0.5}, ");
  nn::Context ctx;
  const std::set<std::string> capture{"enc"};
  ctx.capture = &capture;
  const Tensor y = m->forward(Var(x), ctx).value();
  const Tensor enc = ctx.captured.at("enc").value();
  const Tensor py = m->predict(x, "", 4), penc = m->predict(x, "enc", 4);
  REQUIRE(py.shape() == Shape{11, 3});
  REQUIRE(penc.shape() == Shape{11, enc.size() / 11});
  for (int64_t i = 0; i < y.size(); ++i) CHECK(py[i] == doctest::Approx(y[i]));
  for (int64_t i = 0; i < enc.size(); ++i) CHECK(penc[i] == doctest::Approx(enc[i]));
  CHECK_THROWS_WITH_AS(m->predict(x, "nope"), doctest::Contains("no layer 'nope'"), InputError);
}

TEST_CASE("anomaly_scores: the reconstruction error of a sample of several axes is over all its elements") {
  // Input [2, 3] per sample; a dense layer acts on the last axis, keeping features 0 and 1 of each row.
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 3, use_bias: false}]", {2, 3}, 1);
  set_param(*m, "d.weight", {1, 0, 0, 0, 1, 0, 0, 0, 0});
  const Tensor x({2, 2, 3}, {1, 2, 3, 4, 5, 6, 0, 0, 1, 0, 0, -2});
  const auto s = train::anomaly_scores(*m, x, "mse", "", 1);
  REQUIRE(s.size() == 2);
  CHECK(s[0] == doctest::Approx((9.0 + 36.0) / 6));
  CHECK(s[1] == doctest::Approx((1.0 + 4.0) / 6));
}

TEST_CASE("check_score: the model must be able to give the score") {
  auto ae = drop_third_feature();
  train::AnomalyOptions o = parse("background: [a]\nsignal: [b]\nscore: mse\n");
  CHECK_NOTHROW(train::check_score(*ae, o));
  o.score = "log_mse";
  CHECK_NOTHROW(train::check_score(*ae, o));
  o.score = "latent", o.latent_layer = "enc";
  CHECK_NOTHROW(train::check_score(*ae, o));
  o.latent_layer = "encoder";
  CHECK_INPUT_ERROR(train::check_score(*ae, o), "test.yaml", "'encoder'", "enc, dec");
  o.score = "output";
  CHECK_THROWS_AS(train::check_score(*ae, o), ShapeError);  // 3 outputs
  auto narrow = nn::Model::from_yaml("layers: [{type: dense, name: s, units: 1}]", {3}, 1);
  CHECK_NOTHROW(train::check_score(*narrow, o));
  o.score = "mse";
  CHECK_THROWS_AS(train::check_score(*narrow, o), ShapeError);  // 1 output for 3 inputs
  try {
    train::check_score(*narrow, o);
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()).find("[1]") != std::string::npos);
    CHECK(std::string(e.what()).find("[3]") != std::string::npos);
  }
}

// ---- evaluate_anomaly -----------------------------------------------------------------------------

TEST_CASE("evaluate_anomaly: AUC per signal class, thresholds on background only, efficiencies") {
  // Classes: 0 qcd and 3 wjets are background (scores 0..59 and 60..99), 1 ttbar (scores 95..104) and
  // 2 higgs (all -1) are signal, 4 other is neither (scores 1e6, which must not count as background).
  const std::vector<std::string> names{"qcd", "ttbar", "higgs", "wjets", "other"};
  std::vector<double> scores;
  std::vector<int> labels;
  auto add = [&](int label, double s) { scores.push_back(s), labels.push_back(label); };
  for (int i = 0; i < 100; ++i) add(i < 60 ? 0 : 3, i);
  for (int i = 0; i < 10; ++i) add(1, 95 + i);
  for (int i = 0; i < 5; ++i) add(2, -1);
  for (int i = 0; i < 7; ++i) add(4, 1e6);
  // The order of the samples does not matter.
  std::vector<size_t> perm(scores.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(8));
  std::vector<double> s2;
  std::vector<int> l2;
  for (size_t i : perm) s2.push_back(scores[i]), l2.push_back(labels[i]);

  const auto r = train::evaluate_anomaly(s2, l2, {0, 3}, {1, 2}, names, "mse");
  CHECK(r.score == "mse");
  CHECK(r.background_samples == 100);
  REQUIRE(r.rates == std::vector<double>{1e-2, 1e-3, 1e-4});
  REQUIRE(r.thresholds.size() == 3);
  CHECK(r.thresholds[0] == 98.0);      // one background score (99) above
  CHECK(std::isnan(r.thresholds[1]));  // 100 background samples cannot measure 1e-3
  CHECK(std::isnan(r.thresholds[2]));
  REQUIRE(r.signals.size() == 2);
  CHECK(r.signals[0].name == "ttbar");
  CHECK(r.signals[0].samples == 10);
  // ttbar 95..99 beat 95..99 of the background and tie one each; 100..104 beat all 100:
  // (95.5 + 96.5 + 97.5 + 98.5 + 99.5 + 5 * 100) / 1000.
  CHECK(r.signals[0].auc == doctest::Approx(0.9875));
  REQUIRE(r.signals[0].efficiency.size() == 3);
  CHECK(r.signals[0].efficiency[0] == doctest::Approx(0.6));  // 99..104 above 98
  CHECK(std::isnan(r.signals[0].efficiency[1]));
  CHECK(r.signals[1].name == "higgs");
  CHECK(r.signals[1].samples == 5);
  CHECK(r.signals[1].auc == 0.0);
  CHECK(r.signals[1].efficiency[0] == 0.0);
  REQUIRE(r.roc.size() == 2);
  REQUIRE(!r.roc[0].empty());
  CHECK(r.roc[0].front().first == doctest::Approx(0.01));  // 1 / 100 background samples
  CHECK(r.roc[0].back().second == 1.0);

  // The terminal table names each signal with its AUC; "n/a" where the rate cannot be measured.
  const std::string table = train::anomaly_table(r);
  CHECK(table.find("ttbar") != std::string::npos);
  CHECK(table.find("0.9875") != std::string::npos);
  CHECK(table.find("higgs") != std::string::npos);
  CHECK(table.find("n/a") != std::string::npos);
  CHECK(table.find("100 background") != std::string::npos);

  // A signal class with no test samples: NaN AUC and efficiencies, not a crash.
  const auto empty_sig = train::evaluate_anomaly({1, 2, 3}, {0, 0, 0}, {0}, {1}, {"bg", "sig"}, "mse");
  REQUIRE(empty_sig.signals.size() == 1);
  CHECK(empty_sig.signals[0].samples == 0);
  CHECK(std::isnan(empty_sig.signals[0].auc));
  CHECK(std::isnan(empty_sig.signals[0].efficiency[0]));

  CHECK_THROWS_AS(train::evaluate_anomaly({1, 2}, {0}, {0}, {1}, names, "mse"), ShapeError);
}

// ---- load_data: the anomaly selection and task autoencoder ----------------------------------------

namespace {

// 200 rows: f1 = the class index (a=0, b=1, c=2, d=3), f2 = the row number, f3 and f4 noise; label cls.
std::string write_csv(const TempDir& tmp) {
  std::ofstream out(tmp.path("d.csv"));
  out << "f1,f2,f3,f4,cls\n";
  std::mt19937_64 rng(2);
  std::normal_distribution<double> n(0, 1);
  const char* names[] = {"a", "b", "c", "d"};
  for (int r = 0; r < 200; ++r) {
    const int c = (r * 7) % 4;
    out << c << ',' << r << ',' << n(rng) << ',' << n(rng) << ',' << names[c] << '\n';
  }
  return tmp.path("d.csv");
}

train::DataOptions data_options(const std::string& path, const std::string& extra) {
  return train::parse_data(Config::parse("path: " + path + "\nlabel: cls\n" + extra, "test.yaml"));
}

// (class, row) of every sample: the columns f1 and f2 of unstandardised data.
std::vector<std::pair<int, int>> rows_of(const data::Dataset& d) {
  std::vector<std::pair<int, int>> out;
  for (int64_t i = 0; i < d.size(); ++i)
    out.emplace_back(static_cast<int>(d.x[i * 4]), static_cast<int>(d.x[i * 4 + 1]));
  return out;
}

std::vector<std::pair<int, int>> keep(const std::vector<std::pair<int, int>>& rows,
                                      const std::vector<int>& classes) {
  std::vector<std::pair<int, int>> out;
  for (const auto& r : rows)
    if (std::find(classes.begin(), classes.end(), r.first) != classes.end()) out.push_back(r);
  return out;
}

}  // namespace

TEST_CASE("load_data anomaly: training and validation background only, test background and signal") {
  TempDir tmp;
  const std::string path = write_csv(tmp);
  const auto plain = train::load_data(data_options(path, "standardize: false\n"), 42);
  const auto o = data_options(path, "standardize: false\nanomaly: {background: [a, b], signal: [d]}\n");
  REQUIRE(o.anomaly.enabled());
  const auto ld = train::load_data(o, 42);
  CHECK(ld.class_names == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(ld.background_classes == std::vector<int>{0, 1});
  CHECK(ld.signal_classes == std::vector<int>{3});
  // The same split as without the anomaly section, filtered, in the same order.
  CHECK(rows_of(ld.split.train) == keep(rows_of(plain.split.train), {0, 1}));
  CHECK(rows_of(ld.split.val) == keep(rows_of(plain.split.val), {0, 1}));
  CHECK(rows_of(ld.split.test) == keep(rows_of(plain.split.test), {0, 1, 3}));
  CHECK(ld.split.train.size() > 0);
  CHECK(ld.split.val.size() > 0);
  // Training keeps its labels (a distilled student's split); the test split's move to anomaly_labels.
  REQUIRE(ld.split.train.labels.size() == static_cast<size_t>(ld.split.train.size()));
  for (size_t i = 0; i < ld.split.train.labels.size(); ++i)
    CHECK(ld.split.train.labels[i] == rows_of(ld.split.train)[i].first);
  CHECK(ld.split.test.labels.empty());
  const auto test_rows = rows_of(ld.split.test);
  REQUIRE(ld.anomaly_labels.size() == test_rows.size());
  int signal = 0;
  for (size_t i = 0; i < test_rows.size(); ++i) {
    CHECK(ld.anomaly_labels[i] == test_rows[i].first);
    signal += ld.anomaly_labels[i] == 3;
  }
  CHECK(signal > 0);
  CHECK(signal < static_cast<int>(test_rows.size()));
}

TEST_CASE("load_data task autoencoder: the targets are the (standardised) inputs, flattened; no labels") {
  TempDir tmp;
  const std::string path = write_csv(tmp);
  for (const char* extra :
       {"task: autoencoder\n", "task: autoencoder\nanomaly: {background: [a, b, c], signal: [d]}\n"}) {
    INFO(extra);
    const auto ld = train::load_data(data_options(path, extra), 7);
    CHECK(!ld.standardizer.empty());
    for (const data::Dataset* d : {&ld.split.train, &ld.split.val, &ld.split.test}) {
      CHECK(d->labels.empty());
      REQUIRE(d->targets.shape() == Shape{d->size(), 4});
      for (int64_t i = 0; i < d->x.size(); ++i) CHECK(d->targets[i] == d->x[i]);
    }
    // Standardised on the training split: feature means near 0.
    double m = 0;
    for (int64_t i = 0; i < ld.split.train.size(); ++i) m += ld.split.train.x[i * 4 + 2];
    CHECK(std::fabs(m / static_cast<double>(ld.split.train.size())) < 0.3);
  }
  // Without anomaly every class stays in the test split.
  const auto all = train::load_data(data_options(path, "task: autoencoder\nstandardize: false\n"), 7);
  CHECK(all.anomaly_labels.empty());
  std::map<int, int> classes;
  for (const auto& r : rows_of(all.split.train)) ++classes[r.first];
  CHECK(classes.size() == 4);
}

TEST_CASE("load_data anomaly: bad classes and tasks name what is wrong") {
  TempDir tmp;
  const std::string path = write_csv(tmp);
  CHECK_INPUT_ERROR(
      train::load_data(data_options(path, "task: autoencoder\nanomaly: {background: [a], signal: [e]}\n"), 1),
      "test.yaml:4:", "signal", "'e'", "a, b, c, d");
  CHECK_INPUT_ERROR(
      train::load_data(data_options(path, "task: autoencoder\nanomaly: {background: [a, zz], signal: [d]}\n"),
                       1),
      "test.yaml:4:", "background", "'zz'", "a, b, c, d");
  CHECK_INPUT_ERROR(data_options(path, "task: regression\nanomaly: {background: [a], signal: [d]}\n"),
                    "test.yaml:4:", "anomaly", "regression");
  CHECK_INPUT_ERROR(data_options(path, "task: clustering\n"), "test.yaml:3:", "'clustering'", "autoencoder");
}
