// Batch-1 inference latency of the jet-tagger MLP (16-64-32-32-5) as generated C, beside kiln's engine
// (the quantized model's float forward, and the deployed integer model), on one thread. The model is
// trained briefly with HGQ (data/jet_hgq.yaml's quantization section) on synthetic jet-like data, exported
// with codegen::emit_c (and with its legacy kernels, COptions::fast_kernels = false), compiled with the host
// `cc -std=c99 -O3 -march=x86-64-v3` (--cflags) and timed in a loop; the C's outputs are checked against the
// deployed model first. Prints "<who> infer_bs1_us <value>" lines (bench/run_codegen.sh adds PyTorch and
// prints the table) and leaves in --dir the sources bench/run_codegen.sh runs on the emulated Cortex-M4.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "codegen/emit_c.h"
#include "codegen/emit_util.h"
#include "compress/deploy.h"
#include "engine/train/trainer.h"

using namespace kiln;

namespace {

Tensor rows_of(const Tensor& x, int64_t begin, int64_t end) {
  const int64_t d = x.size() / x.dim(0);
  Tensor t({end - begin, d});
  std::copy(x.data() + begin * d, x.data() + end * d, t.data());
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln generated-C latency benchmark"};
  int samples = 20000;
  std::string dir = "/tmp/kiln_codegen_bench";
  app.add_option("--samples", samples, "timed inferences")->check(CLI::PositiveNumber);
  std::string cflags = "-O3 -march=x86-64-v3";
  int repeats = 3;
  app.add_option("--dir", dir, "scratch directory for the generated C");
  app.add_option("--cflags", cflags, "host compiler flags for the generated C (with cc -std=c99)");
  app.add_option("--repeats", repeats, "timed runs of each build; the fastest counts")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  train::set_threads(1);
  // Synthetic jet-like data: 16 standard-normal features, 5 classes from a random linear map.
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  const int64_t rows = 20000;
  data::Dataset d;
  d.x = Tensor({rows, 16});
  Tensor w({16, 5});
  for (int64_t j = 0; j < w.size(); ++j) w[j] = g(rng);
  for (int64_t j = 0; j < d.x.size(); ++j) d.x[j] = g(rng);
  for (int64_t r = 0; r < rows; ++r) {
    int best = 0;
    float bv = -1e30f;
    for (int c = 0; c < 5; ++c) {
      float v = 0;
      for (int k = 0; k < 16; ++k) v += d.x[r * 16 + k] * w[k * 5 + c];
      if (v > bv) bv = v, best = c;
    }
    d.labels.push_back(best);
  }
  d.class_names = {"g", "q", "W", "Z", "t"};
  auto m = nn::Model::from_yaml(
      "layers:\n  - {type: dense, units: 64, activation: relu}\n  - {type: dense, units: 32, activation: "
      "relu}\n"
      "  - {type: dense, units: 32, activation: relu}\n  - {type: dense, units: 5}\n",
      {16}, 42);
  Config cfg = Config::load_file("data/jet_hgq.yaml");
  compress::HgqOptions o = compress::parse_quantization(cfg.child("compression").child("quantization"));
  auto qm = std::make_shared<compress::QuantizedModel>(*m, o);
  train::TrainOptions to;
  to.epochs = 5, to.batch_size = 256, to.optimizer.learning_rate = 3e-3f;
  train::Trainer tr(*m, to);
  tr.add_loss_term(std::make_shared<compress::HgqLoss>(qm, o));
  tr.fit(d, data::Dataset(), nullptr, nullptr);
  qm->calibrate(*m, d.x);
  compress::DeployedModel dep = compress::DeployedModel::freeze(*m, *qm);
  codegen::Program p = codegen::prepare(dep, "jet");
  codegen::CFiles f = codegen::emit_c(p);
  codegen::COptions legacy_opt;
  legacy_opt.fast_kernels = false;
  codegen::CFiles legacy = codegen::emit_c(p, legacy_opt);
  std::fprintf(
      stderr, "jet MLP: EBOPs %.0f, generated C: flash %lld B, RAM %lld B (legacy kernels: flash %lld B)\n",
      qm->ebops_value(), static_cast<long long>(f.const_bytes + f.code_bytes),
      static_cast<long long>(f.ram_bytes), static_cast<long long>(legacy.const_bytes + legacy.code_bytes));

  // The generated C with a timing main: 256 distinct inputs cycled, outputs summed so nothing is elided. The
  // legacy kernels (the emitter before packed rows and SMLAD) are built from the same model with the same
  // main.
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/jet.h") << f.header;
  std::ofstream(dir + "/jet.c") << f.source;
  std::ofstream(dir + "/jet_legacy.c") << legacy.source;
  const int64_t n_in = 256;
  std::vector<double> want = dep.forward(rows_of(d.x, 0, n_in));
  std::ostringstream inputs;
  inputs << "static const float X[" << n_in << "][16] = {\n";
  for (int64_t r = 0; r < n_in; ++r) {
    inputs << "{";
    for (int k = 0; k < 16; ++k) inputs << (k ? "," : "") << codegen::hexfloat(d.x[r * 16 + k]);
    inputs << "},\n";
  }
  inputs << "};\n";
  std::ostringstream mc;
  mc << "#define _POSIX_C_SOURCE 199309L\n#include <stdio.h>\n#include <time.h>\n#include \"jet.h\"\n"
     << inputs.str() << "int main(void) {\n  jet_in_t q[" << n_in
     << "][16];\n  jet_out_t y[5];\n  long long sum = 0;\n  int r, j;\n"
     << "  struct timespec a, b;\n  for (r = 0; r < " << n_in << "; ++r) jet_quantize_input(X[r], q[r]);\n"
     << "  for (r = 0; r < " << n_in << "; ++r) {\n    jet_run(q[r], y);\n"
     << "    for (j = 0; j < 5; ++j) printf(\"%lld \", (long long)y[j]);\n  }\n  printf(\"\\n\");\n"
     << "  clock_gettime(CLOCK_MONOTONIC, &a);\n  for (r = 0; r < " << samples
     << "; ++r) {\n    jet_run(q[r % " << n_in
     << "], y);\n    sum += y[0];\n  }\n  clock_gettime(CLOCK_MONOTONIC, &b);\n"
     << "  printf(\"%.4f %lld\\n\", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / "
     << samples << ", sum);\n  return 0;\n}\n";
  std::ofstream(dir + "/main.c") << mc.str();
  // For bench/run_codegen.sh's Cortex-M4 count: the first kM4 inputs, an empty non-inlined kiln_mark() before
  // and after the timed inferences (the instruction trace is counted between its two calls), the output codes
  // printed; and the deployed model's codes on those inputs.
  const int kM4 = 20;
  std::ostringstream m4;
  m4 << "#include <stdio.h>\n#include \"jet.h\"\n"
     << inputs.str()
     << "__attribute__((noinline)) void kiln_mark(void) { __asm__ volatile(\"\" ::: \"memory\"); }\n"
     << "int main(void) {\n  static jet_in_t q[" << kM4 << "][jet_N_IN];\n  static jet_out_t y[" << kM4
     << "][jet_N_OUT];\n  int r, j;\n  for (r = 0; r < " << kM4 << "; ++r) jet_quantize_input(X[r], q[r]);\n"
     << "  kiln_mark();\n  for (r = 0; r < " << kM4 << "; ++r) jet_run(q[r], y[r]);\n  kiln_mark();\n"
     << "  for (r = 0; r < " << kM4
     << "; ++r) {\n    for (j = 0; j < jet_N_OUT; ++j) printf(\"%ld \", (long)y[r][j]);\n"
     << "    printf(\"\\n\");\n  }\n  return 0;\n}\n";
  std::ofstream(dir + "/m4_main.c") << m4.str();
  {
    std::ofstream m4_want(dir + "/m4_want.txt");
    for (int r = 0; r < kM4; ++r) {
      for (int j = 0; j < 5; ++j)
        m4_want << std::llround(std::ldexp(want[static_cast<size_t>(r * 5 + j)], p.out().frac)) << ' ';
      m4_want << '\n';
    }
  }
  // Both builds, timed in turns `repeats` times each; the fastest run of each counts (the machine is shared).
  auto run_c = [&](const std::string& src, const std::string& exe) {
    const std::string cmd = "cc -std=c99 " + cflags + " -o " + dir + "/" + exe + " " + dir + "/" + src + " " +
                            dir + "/main.c && " + dir + "/" + exe + " > " + dir + "/out.txt";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "failed: %s\n", cmd.c_str());
      std::exit(1);
    }
    std::ifstream res(dir + "/out.txt");
    int64_t bad = 0;
    for (int64_t j = 0; j < n_in * 5; ++j) {
      long long c;
      res >> c;
      bad += std::ldexp(static_cast<double>(c), -p.out().frac) != want[static_cast<size_t>(j)];
    }
    double us = 0;
    res >> us;
    std::fprintf(stderr, "%s vs deployed model on %lld samples: %lld mismatches, %.4f us per inference\n",
                 src.c_str(), static_cast<long long>(n_in), static_cast<long long>(bad), us);
    if (bad) std::exit(1);
    return us;
  };
  double c_us = 1e30, legacy_us = 1e30;
  for (int k = 0; k < repeats; ++k) {
    c_us = std::min(c_us, run_c("jet.c", "jet_bench"));
    legacy_us = std::min(legacy_us, run_c("jet_legacy.c", "jet_bench_legacy"));
  }
  std::printf("kiln_generated_c infer_bs1_us %.4f\nkiln_generated_c_legacy infer_bs1_us %.4f\n", c_us,
              legacy_us);

  // The engine, batch 1: the quantized model's float forward, and the deployed integer model.
  auto time_us = [&](auto&& fn) {
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < samples; ++r) fn(r % n_in);
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / samples;
  };
  std::vector<Tensor> rows1;
  for (int64_t r = 0; r < n_in; ++r) rows1.push_back(rows_of(d.x, r, r + 1));
  double sink = 0;
  const double eng = time_us([&](int64_t r) {
    NoGradGuard ng;
    nn::Context ctx;
    sink += m->forward(Var(rows1[static_cast<size_t>(r)]), ctx).value()[0];
  });
  const double dm = time_us([&](int64_t r) { sink += dep.forward(rows1[static_cast<size_t>(r)])[0]; });
  std::printf("kiln_engine_quantized infer_bs1_us %.4f\nkiln_engine_deployed infer_bs1_us %.4f\n", eng, dm);
  std::fprintf(stderr, "(checksum %g)\n", sink);
  return 0;
}
