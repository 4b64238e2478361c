// What pruning costs in training throughput: the Fashion-MNIST CNN of data/fashion_mnist.yaml trained on
// synthetic 28x28 images (throughput does not depend on the pixels), one thread, batch 128, without
// pruning and with each method in its pruning stage and with hard masks (fine-tuning). Runs are interleaved
// and repeated, and each prints its median samples/s and the ratio to the unpruned model measured in the
// same run. The issue's target: masking (hard masks, the "fine-tuning" line) costs <= 15%.
//
//   bazel run -c opt //bench:prune_bench -- --samples 4096 --repeats 3
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <random>

#include "compress/pruner.h"
#include "engine/train/trainer.h"

using namespace kiln;

namespace {

const char* kModel = R"(
layers:
  - {type: conv2d, name: conv1, filters: 16, kernel_size: 3, activation: relu}
  - {type: max_pool2d, pool_size: 2}
  - {type: conv2d, name: conv2, filters: 32, kernel_size: 3, activation: relu}
  - {type: max_pool2d, pool_size: 2}
  - {type: flatten}
  - {type: dense, name: fc1, units: 64, activation: relu}
  - {type: dropout, rate: 0.2}
  - {type: dense, name: output, units: 10}
)";

data::Dataset synthetic(int64_t n) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  data::Dataset d;
  d.x = Tensor({n, 28, 28, 1});
  for (int64_t i = 0; i < d.x.size(); ++i) d.x[i] = u(rng);
  d.labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) d.labels[static_cast<size_t>(i)] = static_cast<int>(i % 10);
  for (int c = 0; c < 10; ++c) d.class_names.push_back(std::to_string(c));
  return d;
}

struct Case {
  std::string label, method, extra;
  bool final_stage;  // hard masks (fine-tuning) rather than the pruning stage
};

// Median samples/s over `epochs` epochs (the first is a warm-up and not counted).
double measure(const Case& c, const data::Dataset& d, int epochs) {
  auto m = nn::Model::from_yaml(kModel, {28, 28, 1}, 42);
  train::TrainOptions o;
  o.epochs = epochs, o.batch_size = 128;
  std::shared_ptr<compress::Pruner> p;
  if (!c.method.empty()) {
    // final_stage: a one-epoch stage pruned before the timing starts, then fine-tuning epochs.
    const std::string pr = "{pruning_method: " + c.method + ", sparsity: 0.8" + c.extra + "}";
    const std::string sch = c.final_stage ? "{epochs: 1, fine_tuning_epochs: " + std::to_string(epochs) + "}"
                                          : "{epochs: " + std::to_string(epochs) + "}";
    compress::PruningOptions po = compress::parse_pruning(Config::parse(pr, "bench", "pruning"),
                                                          Config::parse(sch, "bench", "training"));
    p = std::make_shared<compress::Pruner>(*m, po, nullptr);
    if (c.final_stage) {
      p->start_epoch(1);
      p->end_epoch(train::EpochRecord{});  // epoch 0 of a 1-epoch round: ends the stage, masks hard
      p->finish();
    }
    o.epochs = c.final_stage ? epochs + 1 : epochs;
  }
  train::Trainer tr(*m, o);
  if (p) {
    tr.add_loss_term(p);
    if (c.final_stage) {  // the stage's epoch, already done
      train::EpochRecord done;
      done.epoch = 1;
      tr.history().push_back(done);
    }
  }
  tr.fit(d, data::Dataset(), nullptr, nullptr);
  std::vector<double> sps;
  const auto& h = tr.history();
  for (size_t i = c.final_stage ? 2 : 1; i < h.size(); ++i) sps.push_back(h[i].samples_per_second);
  std::sort(sps.begin(), sps.end());
  return sps.empty() ? 0 : sps[sps.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln pruning throughput benchmark"};
  int64_t samples = 4096;
  int repeats = 3, epochs = 3;
  app.add_option("--samples", samples, "synthetic training images")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "interleaved repetitions of every case")->check(CLI::PositiveNumber);
  app.add_option("--epochs", epochs, "epochs per measurement (the first is a warm-up)")
      ->check(CLI::Range(2, 1000));
  CLI11_PARSE(app, argc, argv);
  train::set_threads(1);
  const data::Dataset d = synthetic(samples);
  std::vector<Case> cases{{"unpruned", "", "", false},
                          {"hard masks (fine-tuning stage)", "magnitude", "", true},
                          {"magnitude (pruning stage)", "magnitude", "", false},
                          {"pdp (pruning stage)", "pdp", "", false},
                          {"cs (pruning stage)", "cs", "", false},
                          {"dst (pruning stage)", "dst", "", false},
                          {"autosparse (pruning stage)", "autosparse", "", false},
                          {"wanda (pruning stage)", "wanda", ", t_start_collecting_batch: 0", false},
                          {"mdmm (pruning stage)", "mdmm", "", false}};
  std::vector<std::vector<double>> runs(cases.size());
  for (int r = 0; r < repeats; ++r)
    for (size_t i = 0; i < cases.size(); ++i) runs[i].push_back(measure(cases[i], d, epochs));
  std::vector<double> med;
  for (auto& v : runs) {
    std::sort(v.begin(), v.end());
    med.push_back(v[v.size() / 2]);
  }
  std::printf("%-34s %14s %20s\n", "training (Fashion-MNIST CNN, 1 thread)", "samples/s", "vs unpruned");
  for (size_t i = 0; i < cases.size(); ++i)
    std::printf("%-34s %14.0f %19.3fx\n", cases[i].label.c_str(), med[i], med[i] / med[0]);
  std::printf("masking cost (hard masks): %.1f%% of unpruned throughput (target <= 15%%)\n",
              100.0 * (1.0 - med[1] / med[0]));
  return 0;
}
