// Shared by the code-generation tests: small HGQ models trained in-process (a jet-style MLP on digits, a
// Conv1D model, a Conv2D + DepthwiseConv2D + pooling + BatchNorm CNN), frozen to the deployed model, and
// helpers that write generated code to a directory, compile it with a real compiler and run it.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "codegen/emit_c.h"
#include "codegen/emit_util.h"
#include "compress/deploy.h"
#include "compress/program.h"
#include "compress/pruner.h"
#include "engine/metrics.h"
#include "engine/train/run_config.h"
#include "tests/test_files.h"

namespace kiln::testing {

struct Trained {
  std::string name;
  std::unique_ptr<nn::Model> model;
  std::shared_ptr<compress::QuantizedModel> qm;
  std::shared_ptr<compress::Pruner>
      pruner;  // pruned models: lives as long as the model (its transforms use it)
  std::unique_ptr<compress::DeployedModel> deployed;
  codegen::Program program;
  Tensor test_std, test_raw;  // the test split, standardised (engine input) and raw (generated code input)
  std::vector<int> test_labels;
};

// `pruning` (optional): a `compression: pruning:` mapping and `schedule` the training keys of its schedule;
// the run then trains the schedule's epochs, not `epochs`.
inline void train_hgq(Trained& t, const compress::HgqOptions& o, const data::Dataset& train, int epochs,
                      const std::string& pruning = "", const std::string& schedule = "{}") {
  train::set_threads(1);
  t.qm = std::make_shared<compress::QuantizedModel>(*t.model, o);
  train::TrainOptions to;
  to.epochs = epochs, to.batch_size = 64, to.optimizer.learning_rate = 3e-3f;
  if (!pruning.empty()) {
    compress::PruningOptions po = compress::parse_pruning(Config::parse(pruning, "p.yaml", "pruning"),
                                                          Config::parse(schedule, "p.yaml", "training"));
    t.pruner = std::make_shared<compress::Pruner>(*t.model, po, t.qm.get());
    to.epochs = po.total_epochs();
  }
  train::Trainer tr(*t.model, to);
  tr.add_loss_term(std::make_shared<compress::HgqLoss>(t.qm, o));
  if (t.pruner) tr.add_loss_term(t.pruner);
  tr.fit(train, data::Dataset(), nullptr, nullptr);
  t.qm->calibrate(*t.model, train.x);
  t.deployed = std::make_unique<compress::DeployedModel>(compress::DeployedModel::freeze(*t.model, *t.qm));
  t.program = codegen::prepare(*t.deployed, t.name);
}

inline compress::HgqOptions hgq_options(const std::string& yaml) {
  return compress::parse_quantization(Config::parse(yaml, "q.yaml", "quantization"));
}

// The AXOL1TL-style encoder score model of the VAE tests (12 features): Dense + ReLU, Dense to 2L = mu and
// log-variance, the VAE latent (z = mu when deployed), the score sum(mu^2); and its HGQ settings.
inline const char* const kVaeScoreModel = R"(
layers:
  - {type: dense, name: hidden, units: 16, activation: relu}
  - {type: dense, name: encoder, units: 8}
  - {type: vae_sampling, name: z, beta: 0.01}
  - {type: sum_squares, name: score}
)";
inline const char* const kVaeScoreHgq =
    "default_fractional_bits: 6\ndefault_data_integer_bits: 3\ndefault_data_fractional_bits: 4\n"
    "overflow_mode_data: WRAP\nhgq_beta: 1.0e-6\n";

// Trains t.model with HGQ on a regression set (one target per sample) under `loss`, freezes it and lowers it,
// with `test` (as the engine sees it) as t.test_std. Returns the Pearson correlation of the deployed model's
// output with the test targets: the model learned its score (matching a constant model would prove little).
inline double fit_score_model(Trained& t, const std::string& quantization, const std::string& loss,
                              int epochs, const data::Dataset& train, const data::Dataset& test) {
  const compress::HgqOptions o = hgq_options(quantization);
  train::set_threads(1);
  t.qm = std::make_shared<compress::QuantizedModel>(*t.model, o);
  train::TrainOptions to;
  to.epochs = epochs, to.batch_size = 32, to.optimizer.learning_rate = 5e-3f, to.loss = loss;
  train::Trainer tr(*t.model, to);
  tr.add_loss_term(std::make_shared<compress::HgqLoss>(t.qm, o));
  tr.fit(train, data::Dataset(), nullptr, nullptr);
  t.qm->calibrate(*t.model, train.x);
  t.deployed = std::make_unique<compress::DeployedModel>(compress::DeployedModel::freeze(*t.model, *t.qm));
  t.program = codegen::prepare(*t.deployed, t.name);
  t.test_std = test.x;
  const std::vector<double> y = t.deployed->forward(test.x);
  const double corr = pearson(y, std::vector<double>(test.targets.data(), test.targets.data() + test.size()));
  MESSAGE(t.name << ": correlation of the deployed score with its target " << corr);
  return corr;
}

// Digits (8x8 images) with the standardiser fitted on the training split; `images` reshapes to [8, 8, 1].
inline data::Split digits(data::Standardizer* st, Tensor* test_raw, bool images) {
  Config cfg = Config::load_file("data/digits_hgq.yaml");
  train::DataOptions o = train::parse_data(cfg.child("data"));
  train::LoadedData ld = train::load_data(o, 42);
  *st = ld.standardizer;
  o.standardize = false;
  *test_raw = train::load_data(o, 42).split.test.x;  // same seed: the same rows, unstandardised
  if (images)
    for (data::Dataset* d : {&ld.split.train, &ld.split.val, &ld.split.test})
      d->x = d->x.reshaped({d->size(), 8, 8, 1});
  return ld.split;
}

// A model trained with HGQ on digits (flat [64] or images [8, 8, 1]), standardised as training does it.
inline Trained digits_model(const std::string& name, const std::string& layers, bool images, uint64_t seed,
                            const std::string& quantization, int epochs, const std::string& pruning = "",
                            const std::string& schedule = "{}") {
  Trained t;
  t.name = name;
  data::Standardizer st;
  data::Split s = digits(&st, &t.test_raw, images);
  t.model = nn::Model::from_yaml(layers, images ? Shape{8, 8, 1} : Shape{64}, seed);
  train_hgq(t, hgq_options(quantization), s.train, epochs, pruning, schedule);
  t.test_std = s.test.x;
  t.test_labels = s.test.labels;
  t.program.mean = st.mean, t.program.scale = st.scale;
  return t;
}

// A dense model on digits with the jet tagger's shape of layers (per-weight bit widths, WRAP activations).
inline Trained dense_model() {
  return digits_model(
      "dense_mlp", R"(
layers:
  - {type: dense, units: 32, activation: relu}
  - {type: dense, units: 16, activation: relu}
  - {type: dense, units: 10}
)",
      false, 7,
      "default_fractional_bits: 6\ndefault_data_integer_bits: 3\ndefault_data_fractional_bits: 4\n"
      "overflow_mode_data: WRAP\nhgq_beta: 3.0e-5\n",
      8);
}

// Activations through hls4ml's tables on digits: hard tanh (HGQ's default tanh) or the tanh table
// (use_real_tanh), the sigmoid table, and the stable softmax with its exp and invert tables.
inline Trained lut_model(bool real_tanh) {
  return digits_model(
      real_tanh ? "lut_tanh" : "lut_mlp", R"(
layers:
  - {type: dense, units: 24, activation: tanh}
  - {type: dense, units: 16, activation: sigmoid}
  - {type: dense, units: 10}
  - {type: softmax}
)",
      false, 5,
      std::string(
          "default_fractional_bits: 6\ndefault_data_integer_bits: 2\ndefault_data_fractional_bits: 5\n"
          "overflow_mode_data: SAT\nhgq_beta: 1.0e-5\n") +
          (real_tanh ? "use_real_tanh: true\ntanh_table: {table_size: 512}\n" : ""),
      4);
}

// A small transformer on digits: the 8 rows of an image as tokens, a positional embedding, a pre-norm
// attention block (LayerNorm, Q, K and V from one Dense, 2 heads, the scaled softmax table, an output Dense)
// and a pre-norm feed-forward block, a final LayerNorm, mean pooling over the tokens, a Dense head.
inline Trained attention_model() {
  return digits_model(
      "attention", R"(
layers:
  - {type: reshape, shape: [8, 8]}
  - {type: dense, name: embed, units: 8}
  - {type: positional_embedding, name: pos}
  - {type: residual, name: block, layers: [{type: layer_norm, name: ln1}, {type: dense, name: qkv, units: 24},
                                           {type: attention, name: att, heads: 2}, {type: dense, name: proj, units: 8}]}
  - {type: residual, name: mlp, layers: [{type: layer_norm, name: ln2}, {type: dense, name: ff, units: 16, activation: gelu},
                                         {type: dense, name: ff_out, units: 8}]}
  - {type: layer_norm, name: ln_out}
  - {type: global_avg_pool}
  - {type: dense, units: 10}
)",
      false, 3,
      "default_fractional_bits: 6\ndefault_data_integer_bits: 3\ndefault_data_fractional_bits: 4\n"
      "overflow_mode_data: WRAP\nhgq_beta: 1.0e-5\n",
      12);
}

// Residual blocks on digits (a Dense body, a body that starts with an activation, and a nested block whose
// input is kept across two layers; every add's inputs quantized), and a BatchNorm after a ReLU (not
// foldable: quantized on its own, a per-channel multiply-add).
inline Trained residual_model() {
  return digits_model(
      "residual", R"(
layers:
  - {type: dense, units: 24, activation: relu}
  - {type: batch_norm}
  - {type: residual, layers: [{type: dense, units: 24, activation: relu}, {type: dense, units: 24}]}
  - {type: residual, layers: [{type: relu}, {type: dense, units: 24}]}
  - {type: relu}
  - {type: residual, layers: [{type: dense, units: 24, activation: relu},
                              {type: residual, layers: [{type: dense, units: 24}]}]}
  - {type: dense, units: 10}
)",
      false, 9,
      "default_fractional_bits: 6\ndefault_data_integer_bits: 3\ndefault_data_fractional_bits: 4\n"
      "overflow_mode_data: WRAP\nhgq_beta: 1.0e-5\n",
      4);
}

// Pruned and quantized in one run: structured PDP removes half of the hidden channels and neurons (and
// with them the next layer's multiplications by their outputs), through max pooling and flatten, with HGQ.
inline Trained pruned_model() {
  return digits_model(
      "pruned", R"(
layers:
  - {type: conv2d, name: conv, filters: 8, kernel_size: 3, activation: relu}
  - {type: max_pool2d, pool_size: 2}
  - {type: flatten}
  - {type: dense, name: fc, units: 16, activation: relu}
  - {type: dense, name: out, units: 10}
)",
      true, 13,
      "default_fractional_bits: 6\ndefault_data_integer_bits: 3\ndefault_data_fractional_bits: 4\n"
      "overflow_mode_data: WRAP\nhgq_beta: 1.0e-5\n",
      0, "{pruning_method: pdp, sparsity: 0.5, pdp: {structured_pruning: true, epsilon: 0.5}}",
      "{pretraining_epochs: 1, epochs: 2, fine_tuning_epochs: 2}");
}

// Conv2D (same padding) + BatchNorm (folded) + ReLU + DepthwiseConv2D + max pooling + Dense on 8x8 digits.
inline Trained cnn_model() {
  return digits_model(
      "cnn", R"(
layers:
  - {type: conv2d, filters: 6, kernel_size: 3, padding: same}
  - {type: batch_norm}
  - {type: relu}
  - {type: depthwise_conv2d, kernel_size: 3, strides: 1, activation: relu}
  - {type: max_pool2d, pool_size: 2, padding: same}
  - {type: conv2d, filters: 8, kernel_size: 2, strides: 2, activation: relu}
  - {type: flatten}
  - {type: dense, units: 10}
)",
      true, 11,
      "default_fractional_bits: 6\ndefault_data_integer_bits: 3\ndefault_data_fractional_bits: 4\n"
      "overflow_mode_data: WRAP\ndata_granularity: per_channel\nhgq_beta: 1.0e-5\n",
      4);
}

// Conv1D + max pooling + average pooling (same padding: windows of 2 and 3 inputs) + global average pooling
// on synthetic sequences
// [16 steps, 2 channels]: the class is which of 3 shapes is hidden in noise.
inline Trained conv1d_model() {
  Trained t;
  t.name = "conv1d";
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.f, 0.5f);
  auto make = [&](int64_t n) {
    data::Dataset d;
    d.x = Tensor({n, 16, 2});
    for (int64_t r = 0; r < n; ++r) {
      int c = static_cast<int>(r % 3);
      d.labels.push_back(c);
      for (int64_t s = 0; s < 16; ++s) {
        float v = c == 0 ? std::sin(0.8f * s) : c == 1 ? (s % 4 < 2 ? 1.f : -1.f) : 0.1f * s - 0.8f;
        d.x[(r * 16 + s) * 2] = 3.f * v + noise(rng);
        d.x[(r * 16 + s) * 2 + 1] = 2.f + noise(rng);
      }
    }
    d.class_names = {"sine", "square", "ramp"};
    return d;
  };
  data::Dataset train = make(600), test = make(150);
  t.model = nn::Model::from_yaml(R"(
layers:
  - {type: conv1d, filters: 8, kernel_size: 3, activation: relu}
  - {type: max_pool1d, pool_size: 2}
  - {type: conv1d, filters: 8, kernel_size: 3, strides: 2, padding: same, activation: relu}
  - {type: avg_pool1d, pool_size: 3, strides: 1, padding: same}
  - {type: global_avg_pool}
  - {type: dense, units: 3}
)",
                                 {16, 2}, 5);
  train_hgq(t,
            hgq_options(
                "default_fractional_bits: 5\ndefault_data_integer_bits: 3\ndefault_data_fractional_bits: 3\n"
                "overflow_mode_data: SAT\nround_mode: RND_CONV\nhgq_beta: 1.0e-5\n"),
            train, 6);
  t.test_std = t.test_raw = test.x;  // no standardisation
  t.test_labels = test.labels;
  return t;
}

// The deployed model's outputs on x as integer codes on the program's output grid.
inline std::vector<int64_t> deployed_codes(const Trained& t, const Tensor& x) {
  std::vector<double> y = t.deployed->forward(x);
  std::vector<int64_t> codes;
  for (double v : y) {
    double c = std::ldexp(v, t.program.out().frac);
    REQUIRE(c == std::round(c));  // on the grid
    codes.push_back(static_cast<int64_t>(c));
  }
  return codes;
}

// Runs a shell command, returning its stdout; fails the test (with the command's stderr) on exit != 0.
inline std::string sh(const std::string& cmd, const TempDir& dir) {
  const std::string out = dir.path("sh.out"), err = dir.path("sh.err");
  const auto t0 = std::chrono::steady_clock::now();
  int rc = std::system((cmd + " > " + out + " 2> " + err).c_str());
  // The time of each compile and run, for keeping the tests inside their budget (scripts/test_times.sh).
  MESSAGE(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
          << " s: " << cmd.substr(0, 60));
  std::ifstream o(out), e(err);
  std::string so((std::istreambuf_iterator<char>(o)), {}), se((std::istreambuf_iterator<char>(e)), {});
  INFO("command: " << cmd << "\nstderr: " << se);
  REQUIRE(rc == 0);
  return so;
}

inline std::vector<int64_t> parse_codes(const std::string& s) {
  std::istringstream is(s);
  std::vector<int64_t> v;
  long long c;
  while (is >> c) v.push_back(c);
  return v;
}

// A main() with `n` samples of raw inputs compiled in, printing the output codes of NAME_predict's integer
// path: the same file runs on the host and on the emulated Cortex-M4.
inline std::string samples_main(const std::string& name, const Tensor& raw, int64_t n) {
  std::ostringstream m;
  const int64_t d = raw.size() / raw.dim(0);
  m << "#include <stdio.h>\n#include \"" << name << ".h\"\nstatic const float kSamples[" << n << "][" << d
    << "] = {\n";
  for (int64_t r = 0; r < n; ++r) {
    m << "  {";
    for (int64_t j = 0; j < d; ++j) m << (j ? ", " : "") << codegen::hexfloat(raw[r * d + j]);
    m << "},\n";
  }
  m << "};\n/* newlib-nano's printf has no %lld: decimal by hand. */\nstatic void put(long long v) {\n"
    << "  char b[24];\n  int n = 0;\n  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : "
       "(unsigned long long)v;\n"
    << "  do b[n++] = (char)('0' + u % 10); while ((u /= 10) != 0);\n  if (v < 0) putchar('-');\n"
    << "  while (n) putchar(b[--n]);\n  putchar(' ');\n}\nint main(void) {\n  " << name << "_in_t q[" << name
    << "_N_IN];\n  " << name << "_out_t y[" << name << "_N_OUT];\n  int r, j;\n  for (r = 0; r < " << n
    << "; ++r) {\n    " << name << "_quantize_input(kSamples[r], q);\n    " << name
    << "_run(q, y);\n    for (j = 0; j < " << name << "_N_OUT; ++j) put((long long)y[j]);\n"
    << "    printf(\"\\n\");\n  }\n  return 0;\n}\n";
  return m.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  REQUIRE(f.good());
}

}  // namespace kiln::testing
