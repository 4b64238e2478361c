// Speed of the HGQ quantizer op (compress/quantize_ops.h) on the shape where the Fashion-MNIST HGQ CNN spends
// most of its quantizer time: the second conv layer's input, per-element bits (13x13x16 = 2704 entries),
// batch 128, WRAP in training. Prints ns per element for the forward alone, forward + backward (gradients
// to x, f and i), the forward at inference (WRAP applied; i 3 higher, so that as after calibration almost
// nothing overflows) and the range pass (min and max per entry, in training and calibration), each with the
// kernels' baseline copy (AVX2 in the default build) and, where the CPU has it, their AVX-512 copy; and the
// fast path (the default copy) against quantize_fixed_reference (the element-by-element definition).
//   bazel run //bench:quantize_bench -- [--reps N] [--nb E] [--rows R] [--threads T]
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "compress/quantize_kernel.h"
#include "compress/quantize_ops.h"

namespace {

using kiln::Tensor;
using kiln::Var;
using kiln::compress::Overflow;
using kiln::compress::Round;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln quantizer op speed"};
  int reps = 40, threads = 1;
  int64_t nb = 2704, rows = 128;
  app.add_option("--reps", reps, "repetitions")->check(CLI::PositiveNumber);
  app.add_option("--nb", nb, "bit entries (per-element bits of one sample)")->check(CLI::PositiveNumber);
  app.add_option("--rows", rows, "samples per batch")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "OpenMP threads")->check(CLI::Range(1, 256));
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.5f);
  std::uniform_int_distribution<int> fd(1, 7), id(0, 2);
  Tensor x({rows, nb}), g({rows, nb}), f({nb}), i({nb});
  for (int64_t j = 0; j < x.size(); ++j) x[j] = nd(rng), g[j] = nd(rng);
  for (int64_t e = 0; e < nb; ++e) f[e] = static_cast<float>(fd(rng)), i[e] = static_cast<float>(id(rng));
  Var xv(x, true), fv(f, true), iv(i, true);
  const double elems = static_cast<double>(x.size()) * reps;
  double checksum = 0;
  auto run = [&](bool reference, bool with_backward) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) {
      std::optional<kiln::NoGradGuard> ng;
      if (!with_backward) ng.emplace();
      // x's gradient starts fresh every repetition, as an activation's does in every training step.
      xv.node()->grad = Tensor();
      Var y = (reference ? kiln::compress::quantize_fixed_reference : kiln::compress::quantize_fixed)(
          xv, fv, iv, 1, Round::kRnd, Overflow::kWrap, true, nullptr);
      if (with_backward) kiln::backward(y, g);
      checksum += y.value()[r % y.size()];
    }
    return seconds_since(t0) * 1e9 / elems;
  };
  // At inference WRAP wraps what overflows; with i 3 more than above, as after calibration, almost nothing
  // does.
  Tensor i3 = i;
  for (int64_t e = 0; e < nb; ++e) i3[e] += 3.f;
  Var iv3(i3);
  auto run_inference = [&] {
    kiln::NoGradGuard ng;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) {
      Var y = kiln::compress::quantize_fixed(xv, fv, iv3, 1, Round::kRnd, Overflow::kWrap, false, nullptr);
      checksum += y.value()[r % y.size()];
    }
    return seconds_since(t0) * 1e9 / elems;
  };
  // The range pass (training under WRAP, calibration): min and max per bit entry over the batch.
  auto run_range = [&] {
    std::vector<float> lo(static_cast<size_t>(nb)), hi(static_cast<size_t>(nb));
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) {
      std::fill(lo.begin(), lo.end(), std::numeric_limits<float>::infinity());
      std::fill(hi.begin(), hi.end(), -std::numeric_limits<float>::infinity());
      kiln::compress::qkernel::column_min_max(x.data(), x.size(), nb, lo.data(), hi.data());
      checksum += lo[static_cast<size_t>(r % nb)] + hi[static_cast<size_t>(r % nb)];
    }
    return seconds_since(t0) * 1e9 / elems;
  };
  std::printf("quantize_fixed, %lld x %lld elements, per-element bits, WRAP, training, %d thread%s\n",
              static_cast<long long>(rows), static_cast<long long>(nb), threads, threads == 1 ? "" : "s");
  const double ref = run(true, true);
  double both = 0;
  // The kernels' baseline (AVX2) copy, then their AVX-512 copy where this CPU has it (the default there).
  for (bool avx512 : {false, true}) {
    if (kiln::compress::qkernel::use_avx512(avx512) != avx512) continue;
    run(false, true);  // warm-up
    const double fwd = run(false, false);
    both = run(false, true);
    const double infer = run_inference();
    const double range = run_range();
    std::printf("%s kernels:\n",
                avx512 ? "AVX-512 (run-time copy)" : "baseline (the build's instruction set)");
    std::printf("  forward:              %6.2f ns/element\n", fwd);
    std::printf("  forward + backward:   %6.2f ns/element\n", both);
    std::printf("  forward at inference: %6.2f ns/element\n", infer);
    std::printf("  range (min and max):  %6.2f ns/element\n", range);
  }
  std::printf("reference fwd + bwd:    %6.2f ns/element\n", ref);
  std::printf("quantize_fast_vs_reference: %.1f\n", ref / both);
  std::fprintf(stderr, "(checksum %g)\n", checksum);
}
