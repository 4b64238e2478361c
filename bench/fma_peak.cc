// One core's floating-point ceiling: float fused multiply-adds per second with AVX2 (8 lanes) and, where the
// CPU has it, AVX-512 (16 lanes), from 12 independent accumulator chains (enough to cover the FMA latency of
// two pipes). bench/run_cnn.sh divides the CNN's multiply-add work per training sample by it, to show what
// fraction of the machine a speed target needs. Some CPUs run 512-bit FMAs on one pipe or at a lower clock,
// so the AVX-512 figure can be the lower one.
//   bazel run //bench:fma_peak [-- --seconds S]
// Prints "fma_peak_avx2_gflops X" and, with AVX-512, "fma_peak_avx512_gflops Y" (best of 5 timed rounds).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>

#if defined(__x86_64__)
#include <immintrin.h>

namespace {

constexpr int kChains = 12;

// Runs `iters` rounds of kChains independent FMAs; returns GFLOP/s (2 flops per lane per FMA). The asm
// barrier keeps the compiler from folding the chains; the sum of the lanes is printed so nothing is dead.
__attribute__((target("avx2,fma"))) double avx2_round(long iters, float* sink) {
  __m256 acc[kChains];
  const __m256 m = _mm256_set1_ps(0.999f), a = _mm256_set1_ps(1e-3f);
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    asm volatile(""
                 : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]), "+x"(acc[4]), "+x"(acc[5]),
                   "+x"(acc[6]), "+x"(acc[7]), "+x"(acc[8]), "+x"(acc[9]), "+x"(acc[10]), "+x"(acc[11]));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int i = 0; i < kChains; ++i) *sink += _mm256_cvtss_f32(acc[i]);
  return static_cast<double>(iters) * kChains * 8 * 2 / s / 1e9;
}

__attribute__((target("avx512f"))) double avx512_round(long iters, float* sink) {
  __m512 acc[kChains];
  const __m512 m = _mm512_set1_ps(0.999f), a = _mm512_set1_ps(1e-3f);
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    asm volatile(""
                 : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                   "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int i = 0; i < kChains; ++i) *sink += _mm512_cvtss_f32(acc[i]);
  return static_cast<double>(iters) * kChains * 16 * 2 / s / 1e9;
}

// Best of 5 rounds of about `seconds` / 5 each (the first round also warms the clock up).
template <class Round>
double best_of(Round round, double seconds, float* sink) {
  long iters = 1 << 20;
  const auto t0 = std::chrono::steady_clock::now();
  round(iters, sink);
  const double probe = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  iters = std::max<long>(iters, static_cast<long>(static_cast<double>(iters) * seconds / 5 / probe));
  double best = 0;
  for (int r = 0; r < 5; ++r) best = std::max(best, round(iters, sink));
  return best;
}

}  // namespace

#endif  // __x86_64__

int main(int argc, char** argv) {
  CLI::App app{"Single-core FMA peak (GFLOP/s) for AVX2 and AVX-512"};
  double seconds = 1.0;
  app.add_option("--seconds", seconds, "time per instruction set")->check(CLI::Range(0.05, 60.0));
  CLI11_PARSE(app, argc, argv);
#if !defined(__x86_64__)
  std::fprintf(stderr, "fma_peak: measures x86-64 vector units only\n");
  return 1;
#else
  float sink = 0.f;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::fprintf(stderr, "fma_peak: this CPU has no AVX2/FMA\n");
    return 1;
  }
  std::printf("fma_peak_avx2_gflops %.1f\n", best_of(avx2_round, seconds, &sink));
  if (__builtin_cpu_supports("avx512f"))
    std::printf("fma_peak_avx512_gflops %.1f\n", best_of(avx512_round, seconds, &sink));
  std::fprintf(stderr, "(checksum %g)\n", static_cast<double>(sink));
  return 0;
#endif
}
