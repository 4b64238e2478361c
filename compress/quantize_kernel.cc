// The fast path of quantize_fixed: see quantize_kernel.h for when it applies and why it is exact.
#include "compress/quantize_kernel.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "compress/quantize_ops.h"
#include "engine/check.h"

namespace kiln::compress::qkernel {

#define KILN_QK_ISA baseline
#include "compress/quantize_kernel_loops.h"
#undef KILN_QK_ISA

// The same loops for AVX-512 (the x86-64-v4 extensions), chosen at run time on CPUs that have it: 16 floats
// or 8 doubles per instruction where the baseline has half, about 1.2x on the quantizer op (quantize_bench)
// and 5% on an HGQ epoch of the Fashion-MNIST CNN, with the same results. Not built when the whole build
// already targets AVX-512 (--config=native on such a CPU), nor off x86.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__AVX512F__)
#define KILN_QK_AVX512 1
#pragma GCC push_options
#pragma GCC target("avx512f,avx512cd,avx512bw,avx512dq,avx512vl")
#define KILN_QK_ISA avx512
#include "compress/quantize_kernel_loops.h"
#undef KILN_QK_ISA
#pragma GCC pop_options
#else
#define KILN_QK_AVX512 0
#endif

namespace {
bool cpu_has_avx512() {
#if KILN_QK_AVX512
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

std::atomic<bool>& avx512_on() {
  static std::atomic<bool> on{cpu_has_avx512()};
  return on;
}
}  // namespace

bool use_avx512(bool on) {
  avx512_on() = on && cpu_has_avx512();
  return avx512_on();
}

bool avx512_in_use() { return avx512_on(); }

namespace {

// Entry e's constants from t.i[e] and t.f[e] (and the table's mode); false when the fast path does not
// apply to that type.
bool fill_entry(Table& t, size_t e) {
  const int i = t.i[e], f = t.f[e];
  const PreparedType p = prepare({t.k, i, f, t.round, t.overflow});
  const int width = t.k + i + f;
  if (std::abs(f) > 64 || (!p.pruned && (width > 24 || i > 64))) return false;
  t.pruned[e] = p.pruned;
  t.scale[e] = static_cast<float>(p.scale), t.inv[e] = static_cast<float>(p.inv);
  t.hi[e] = p.pruned ? 0.f : static_cast<float>(p.hi);
  t.lo[e] = p.pruned ? 0.f : static_cast<float>(p.lo);
  t.top[e] = static_cast<float>(t.hi[e] * p.inv), t.bottom[e] = static_cast<float>(t.lo[e] * p.inv);
  t.modulus[e] = t.hi[e] - t.lo[e] + 1.f;  // WRAP: 2^(k+i+f), exact (at most 2^24)
  t.inv_modulus[e] = 1.f / t.modulus[e];
  // The surrogate past the range (quantize_ops.h), as the scalar path computes and stores it.
  constexpr double kLn2 = 0.69314718055994530942;
  t.above_df[e] = static_cast<float>(std::ldexp(kLn2, -f));
  t.above_di[e] = static_cast<float>(std::ldexp(kLn2, i));
  t.below_df[e] = static_cast<float>(t.overflow == Overflow::kSatSym ? -t.k * std::ldexp(kLn2, -f) : 0.0);
  t.below_di[e] = static_cast<float>(-t.k * std::ldexp(kLn2, i));
  return true;
}

}  // namespace

std::shared_ptr<const Table> make_table(int k, const std::vector<int>& i, const std::vector<int>& f,
                                        Round round, Overflow overflow, bool training) {
  if (round != Round::kRnd && round != Round::kTrn) return nullptr;
  KILN_CHECK(i.size() == f.size(), "qkernel::make_table: i and f differ in size");
  auto t = std::make_shared<Table>();
  t->round = round, t->overflow = overflow, t->k = k, t->training = training, t->i = i, t->f = f;
  const size_t nb = f.size();
  for (auto* v : {&t->scale, &t->inv, &t->hi, &t->lo, &t->top, &t->bottom, &t->modulus, &t->inv_modulus,
                  &t->above_df, &t->above_di, &t->below_df, &t->below_di})
    v->resize(nb);
  t->pruned.resize(nb);
  for (size_t e = 0; e < nb; ++e)
    if (!fill_entry(*t, e)) return nullptr;
  return t;
}

std::shared_ptr<const Table> updated_table(const Table& from, const std::vector<int>& i,
                                           const std::vector<int>& f) {
  KILN_CHECK(i.size() == f.size() && f.size() == from.f.size(),
             "qkernel::updated_table: " + std::to_string(from.f.size()) + " entries, bits for " +
                 std::to_string(f.size()) + " and " + std::to_string(i.size()));
  auto t = std::make_shared<Table>(from);
  t->i = i, t->f = f;
  for (size_t e = 0; e < f.size(); ++e)
    if ((i[e] != from.i[e] || f[e] != from.f[e]) && !fill_entry(*t, e)) return nullptr;
  return t;
}

int forward(const Table& t, const float* x, float* out, int64_t n) {
#if KILN_QK_AVX512
  if (avx512_on()) return avx512::forward(t, x, out, n);
#endif
  return baseline::forward(t, x, out, n);
}

void column_min_max(const float* x, int64_t n, int64_t nb, float* lo, float* hi) {
#if KILN_QK_AVX512
  if (avx512_on()) return avx512::column_min_max(x, n, nb, lo, hi);
#endif
  baseline::column_min_max(x, n, nb, lo, hi);
}

void backward(const Table& t, const float* x, bool exact, const float* g, int64_t n, float* gx, bool gx_fresh,
              double* df_acc, double* di_acc) {
#if KILN_QK_AVX512
  if (avx512_on()) return avx512::backward(t, x, exact, g, n, gx, gx_fresh, df_acc, di_acc);
#endif
  baseline::backward(t, x, exact, g, n, gx, gx_fresh, df_acc, di_acc);
}

int forward_band(const Table& t, const float* x, int64_t rows, float* out, int64_t ld, int64_t ea,
                 int64_t eb) {
  KILN_CHECK(0 <= ea && ea <= eb && eb <= t.nb() && ld >= eb - ea,
             "qkernel::forward_band: band [" + std::to_string(ea) + ", " + std::to_string(eb) + ") of " +
                 std::to_string(t.nb()) + " entries, rows " + std::to_string(ld) + " apart");
#if KILN_QK_AVX512
  if (avx512_on()) return avx512::forward_band(t, x, rows, out, ld, ea, eb);
#endif
  return baseline::forward_band(t, x, rows, out, ld, ea, eb);
}

}  // namespace kiln::compress::qkernel
