// End to end: the digits config trains to >= 0.95 test accuracy; runs are bit-for-bit reproducible with
// one thread and a fixed seed, and resuming from a checkpoint continues exactly; a tiny transformer
// learns to reverse token sequences.
#include <chrono>
#include <fstream>

#include "engine/optim/optimizer.h"
#include "engine/train/checkpoint.h"
#include "tests/gradcheck.h"
#include "tests/test_files.h"

using namespace kiln;
using kiln::testing::TempDir;

namespace {

struct Run {
  train::TrainOptions topt;
  train::LoadedData data;
  std::unique_ptr<nn::Model> model;
};

Run setup(int epochs) {
  Config cfg = Config::load_file("data/digits.yaml");
  Run r;
  r.topt = train::parse_training(cfg.child("training"));
  r.topt.epochs = epochs;
  r.data = train::load_data(train::parse_data(cfg.child("data")), r.topt.seed);
  Shape in(r.data.split.train.x.shape().begin() + 1, r.data.split.train.x.shape().end());
  r.model = nn::Model::from_config(cfg.child("model"), in, r.topt.seed);
  return r;
}

std::vector<float> flat_params(nn::Model& m) {
  std::vector<float> out;
  for (auto* p : m.parameters()) {
    std::vector<float> v = p->var.value().storage();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace

TEST_CASE("digits: >= 0.95 test accuracy with the config's seed") {
  train::set_threads(1);
  auto t0 = std::chrono::steady_clock::now();
  Run r = setup(40);
  train::Trainer tr(*r.model, r.topt);
  tr.fit(r.data.split.train, r.data.split.val, nullptr, nullptr);
  train::EvalResult ev = train::evaluate(*r.model, r.data.split.test, r.topt);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("digits test accuracy " << ev.accuracy << " in " << secs << " s");
  CHECK(ev.accuracy >= 0.95);
  CHECK(ev.auc > 0.99);
}

TEST_CASE("one thread, fixed seed: identical weights; resume == uninterrupted") {
  train::set_threads(1);
  Run a = setup(3), b = setup(3);
  train::Trainer ta(*a.model, a.topt), tb(*b.model, b.topt);
  ta.fit(a.data.split.train, a.data.split.val, nullptr, nullptr);
  tb.fit(b.data.split.train, b.data.split.val, nullptr, nullptr);
  CHECK(flat_params(*a.model) == flat_params(*b.model));

  // Two epochs, checkpoint, restore into a new model and optimiser, one more epoch.
  Run c = setup(2);
  train::Trainer tc(*c.model, c.topt);
  tc.fit(c.data.split.train, c.data.split.val, nullptr, nullptr);
  train::Checkpoint ck = train::make_checkpoint(*c.model, c.data.standardizer, c.data.split.train);
  ck.optimizer_state = tc.optimizer().state();
  ck.history = tc.history();
  TempDir tmp;
  std::string path = tmp.path("resume.ckpt");
  train::save_checkpoint(ck, path);
  train::Checkpoint back = train::load_checkpoint(path);
  auto d = train::restore_model(back);
  train::TrainOptions o = c.topt;
  o.epochs = 3;
  train::Trainer td(*d, o);
  td.optimizer().load_state(back.optimizer_state, d->parameters());
  td.history() = back.history;
  td.fit(c.data.split.train, c.data.split.val, nullptr, nullptr);
  CHECK(td.history().size() == 3);
  CHECK(flat_params(*d) == flat_params(*a.model));
}

TEST_CASE("data/jet.yaml runs on a file in the OpenML jet format (synthetic values, not physics)") {
  // 16 named features and string classes g, q, t, w, z as in hls4ml_lhc_jets_hlf; the class shifts the
  // mean of a few features so that the task is learnable.
  Config cfg = Config::load_file("data/jet.yaml");
  train::DataOptions d = train::parse_data(cfg.child("data"));
  REQUIRE(d.features.size() == 16);
  TempDir tmp;
  std::string path = tmp.path("jets.csv");
  {
    std::ofstream out(path);
    for (const auto& f : d.features) out << f << ',';
    out << "class\n";
    std::mt19937_64 rng(5);
    std::normal_distribution<double> n(0, 1);
    const char* classes[] = {"g", "q", "t", "w", "z"};
    for (int r = 0; r < 2000; ++r) {
      int c = r % 5;
      for (int j = 0; j < 16; ++j) out << n(rng) + (j % 5 == c ? 1.5 : 0.0) << ',';
      out << "'" << classes[c] << "'\n";  // OpenML quotes nominal values
    }
  }
  d.path = path;
  train::TrainOptions o = train::parse_training(cfg.child("training"));
  o.epochs = 10;
  o.batch_size = 64;  // 1,400 training rows: the config's 1,024 would give two steps an epoch
  train::LoadedData ld = train::load_data(d, o.seed);
  CHECK(ld.split.train.class_names == std::vector<std::string>{"g", "q", "t", "w", "z"});
  CHECK(ld.split.test.size() == 400);  // test_split 0.2
  auto m = nn::Model::from_config(cfg.child("model"), {16}, o.seed);
  CHECK(m->num_params() == 16 * 64 + 64 + 64 * 32 + 32 + 32 * 32 + 32 + 32 * 5 + 5);  // hls4ml's 4,389
  train::Trainer tr(*m, o);
  tr.fit(ld.split.train, ld.split.val, nullptr, nullptr);
  train::EvalResult ev = train::evaluate(*m, ld.split.test, o);
  MESSAGE("synthetic jet accuracy " << ev.accuracy);
  CHECK(ev.accuracy > 0.75);
}

TEST_CASE("a tiny transformer learns to reverse sequences (>= 0.95 token accuracy)") {
  train::set_threads(1);
  constexpr int64_t kT = 6, kV = 8, kB = 64;
  auto m = nn::Model::from_yaml(R"(
layers:
  - {type: embedding, vocab_size: 8, dim: 32}
  - {type: positional_embedding}
  - {type: transformer_block, heads: 4, ff_dim: 64}
  - {type: transformer_block, heads: 4, ff_dim: 64}
  - {type: layer_norm}
  - {type: dense, units: 8}
)",
                                {kT}, 3);
  optim::OptimizerOptions oo;
  oo.learning_rate = 3e-3f;
  auto opt = optim::make_optimizer(oo);
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> tok(0, kV - 1);
  auto batch = [&](int64_t n, Tensor& x, std::vector<int>& y) {
    x = Tensor({n, kT});
    y.assign(static_cast<size_t>(n * kT), 0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t t = 0; t < kT; ++t) {
        int v = tok(rng);
        x[i * kT + t] = static_cast<float>(v);
        y[static_cast<size_t>(i * kT + (kT - 1 - t))] = v;  // target: the sequence reversed
      }
  };
  auto params = m->parameters();
  nn::Context train_ctx{true, &rng};
  Tensor x;
  std::vector<int> y;
  for (int step = 0; step < 500; ++step) {
    batch(kB, x, y);
    Var loss = softmax_cross_entropy(m->forward(Var(x), train_ctx), y);
    optim::Optimizer::zero_grad(params);
    backward(loss);
    opt->step(params, 3e-3f);
  }
  batch(1000, x, y);
  NoGradGuard ng;
  nn::Context eval_ctx;
  Tensor out = m->forward(Var(x), eval_ctx).value();  // [1000, T, V]
  int64_t correct = 0;
  for (int64_t i = 0; i < 1000 * kT; ++i) {
    int64_t best = 0;
    for (int64_t v = 1; v < kV; ++v)
      if (out[i * kV + v] > out[i * kV + best]) best = v;
    correct += best == y[static_cast<size_t>(i)];
  }
  double acc = static_cast<double>(correct) / (1000.0 * kT);
  MESSAGE("transformer reversal token accuracy " << acc);
  CHECK(acc >= 0.95);
}
