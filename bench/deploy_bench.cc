// Speed of the deployed integer model (compress::DeployedModel::forward, the deployed check of every HGQ run)
// on the Fashion-MNIST HGQ CNN of data/fashion_mnist_hgq.yaml: its layers with their initial weights, random
// per-element fractional bits (3 to 6), calibrated on the first 2,000 test images, run over all 10,000.
// Prints microseconds per sample for each batch size (samples run through the program at once), the batch
// sizes interleaved over the repetitions, with the median of each; every batch size must give the same
// outputs, and does.
//   bazel run //bench:deploy_bench -- [--reps N] [--batches 1,4,16,64] [--threads T] [--config FILE]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>

#include "compress/deploy.h"
#include "engine/data/loaders.h"
#include "engine/train/run_config.h"

using namespace kiln;

int run(const std::vector<int64_t>& batches, int reps, int threads, std::string config);

int main(int argc, char** argv) {
  CLI::App app{"kiln deployed model speed"};
  int reps = 3, threads = 1;
  std::vector<int64_t> batches{1, 4, 8, 16, 32, 64};
  app.add_option("--reps", reps, "repetitions")->check(CLI::PositiveNumber);
  app.add_option("--batches", batches, "batch sizes to compare")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "OpenMP threads")->check(CLI::Range(1, 256));
  std::string config = "data/fashion_mnist_hgq.yaml";
  app.add_option("--config", config, "the HGQ CNN's config (default data/fashion_mnist_hgq.yaml)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(batches, reps, threads, config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deploy_bench: error: %s\n", e.what());
    return 1;
  }
}

int run(const std::vector<int64_t>& batches, int reps, int threads, std::string config) {
  train::set_threads(threads);
  const data::Dataset test = data::load_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                                            "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  // The model and quantization sections of the config itself; a relative path is the workspace's under
  // `bazel run` (which starts the binary in its runfiles).
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY"); ws && !config.empty() && config[0] != '/')
    config = std::string(ws) + "/" + config;
  const Config cfg = Config::load_file(config);
  auto m = nn::Model::from_config(cfg.child("model"), {28, 28, 1}, 1);
  const compress::HgqOptions o = compress::parse_quantization(cfg.child("compression").child("quantization"));
  compress::QuantizedModel qm(*m, o);
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int> fb(3, 6);
  for (compress::FixedQuantizer* q : qm.quantizers()) {
    Tensor& f = const_cast<Tensor&>(q->f());
    for (int64_t j = 0; j < f.size(); ++j) f[j] = static_cast<float>(fb(rng));
  }
  Shape cs = test.x.shape();
  cs[0] = 2000;
  Tensor calib(cs);
  std::copy_n(test.x.data(), calib.size(), calib.data());
  qm.calibrate(*m, calib);
  const compress::DeployedModel d = compress::DeployedModel::freeze(*m, qm);
  const int64_t n = test.x.dim(0);
  std::map<int64_t, std::vector<double>> us;
  std::vector<double> first;
  bool same = true;
  for (int r = 0; r < reps; ++r)
    for (int64_t b : batches) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<double> y = d.forward(test.x, b);
      us[b].push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
          static_cast<double>(n));
      if (first.empty()) first = y;
      same = same && y == first;
    }
  std::printf("deployed Fashion-MNIST HGQ CNN, %lld test samples, %d thread(s), widest accumulator %d bits\n",
              static_cast<long long>(n), threads, d.max_accumulator_bits());
  std::printf("%8s %14s   (each repetition)\n", "batch", "us/sample");
  for (auto& [b, v] : us) {
    std::vector<double> s = v;
    std::sort(s.begin(), s.end());
    std::printf("%8lld %14.1f  ", static_cast<long long>(b), s[s.size() / 2]);
    for (double t : v) std::printf(" %.1f", t);
    std::printf("\n");
  }
  std::printf("outputs identical across batch sizes: %s\n", same ? "yes" : "NO");
  return same ? 0 : 1;
}
