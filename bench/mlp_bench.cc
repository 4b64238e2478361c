// kiln side of the MLP benchmark (bench/run_mlp.sh runs it beside PyTorch): the jet-tagger MLP
// 16-64-32-32-5 with ReLU, cross-entropy, Adam lr 1e-3, one pass over N synthetic rows at each batch size,
// one thread; then batch-1 inference latency. Prints "kiln <metric> <value>" lines.
//
//   bazel run -c opt //bench:mlp_bench -- --rows 200000
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <random>

#include "engine/train/trainer.h"

using namespace kiln;

namespace {

// Gaussian features; labels from a fixed random linear "teacher" so the task is learnable.
data::Dataset synthetic(int64_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  data::Dataset d;
  d.x = Tensor({rows, 16});
  for (int64_t i = 0; i < d.x.size(); ++i) d.x[i] = n(rng);
  Tensor w({16, 5});
  for (int64_t i = 0; i < w.size(); ++i) w[i] = n(rng);
  Tensor logits({rows, 5});
  logits.matrix() = d.x.matrix() * w.matrix();
  d.labels.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    Eigen::Index j;
    logits.matrix().row(r).maxCoeff(&j);
    d.labels[static_cast<size_t>(r)] = static_cast<int>(j);
  }
  d.class_names = {"0", "1", "2", "3", "4"};
  return d;
}

const char* kModel = R"(
layers:
  - {type: dense, name: fc1, units: 64, activation: relu}
  - {type: dense, name: fc2, units: 32, activation: relu}
  - {type: dense, name: fc3, units: 32, activation: relu}
  - {type: dense, name: output, units: 5}
)";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln MLP training/inference benchmark"};
  int64_t rows = 200000;
  int latency_samples = 5000;
  app.add_option("--rows", rows, "synthetic training rows")->check(CLI::PositiveNumber);
  app.add_option("--latency-samples", latency_samples, "samples for the batch-1 latency")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  train::set_threads(1);
  data::Dataset d = synthetic(rows, 1);
  data::Dataset empty;
  for (int64_t bs : {1024, 256, 32}) {
    auto model = nn::Model::from_yaml(kModel, {16}, 42);
    train::TrainOptions o;
    o.epochs = 1;
    o.batch_size = bs;
    o.optimizer.type = "adam";
    o.optimizer.learning_rate = 1e-3f;
    train::Trainer tr(*model, o);
    auto t0 = std::chrono::steady_clock::now();
    tr.fit(d, empty, nullptr, nullptr);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("kiln train_bs%lld_samples_per_s %.0f\n", static_cast<long long>(bs), static_cast<double>(rows) / s);
    std::printf("kiln train_bs%lld_final_loss %.4f\n", static_cast<long long>(bs), tr.history().back().train_loss);
    if (bs == 32) {
      NoGradGuard ng;
      nn::Context ctx;
      Tensor x({1, 16});
      double sink = 0;
      auto t1 = std::chrono::steady_clock::now();
      for (int i = 0; i < latency_samples; ++i) {
        std::copy_n(d.x.data() + (i % rows) * 16, 16, x.data());
        sink += model->forward(Var(x), ctx).value()[0];
      }
      double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t1).count();
      std::printf("kiln infer_bs1_us %.3f\n", us / latency_samples);
      if (sink == 12345.678) std::printf(" ");  // keeps the loop from being optimised away
    }
  }
  return 0;
}
