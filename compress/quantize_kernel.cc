// The fast path of quantize_fixed: see quantize_kernel.h for when it applies and why it is exact.
#include "compress/quantize_kernel.h"

#include <algorithm>
#include <cmath>

#include "compress/quantize_ops.h"
#include "engine/check.h"

namespace kiln::compress::qkernel {

namespace {

constexpr double kLn2 = 0.69314718055994530942;
constexpr uint8_t kScalar = 4;  // region of an element the scalar definition computed

FixedType type_of(const Table& t, int64_t e) {
  return {t.k, t.i[static_cast<size_t>(e)], t.f[static_cast<size_t>(e)], t.round, t.overflow};
}

// The element loop, instantiated per rounding and overflow mode so that each is a straight vectorisable
// select chain. Elements the float path may not take get region kScalar and are redone afterwards.
template <bool kRnd, Overflow kOv>
void forward_rows(const Table& t, const float* __restrict x, float* __restrict out, uint8_t* __restrict reg,
                  int64_t n) {
  const int64_t nb = t.nb();
  const float* __restrict scale = t.scale.data();
  const float* __restrict inv = t.inv.data();
  const float* __restrict hi = t.hi.data();
  const float* __restrict lo = t.lo.data();
  const float* __restrict top = t.top.data();
  const float* __restrict bottom = t.bottom.data();
  const int32_t* __restrict pruned = t.pruned.data();
  const int wrap_now = kOv == Overflow::kWrap && !t.training;
  for (int64_t r0 = 0; r0 < n; r0 += nb) {
    const float* __restrict xr = x + r0;
    float* __restrict yr = out + r0;
    uint8_t* __restrict gr = reg + r0;
    // Selects on same-width values and bitwise & | (no short circuits) keep this loop vectorised.
    for (int64_t e = 0; e < nb; ++e) {
      const float xv = xr[e], s = xv * scale[e], t_top = top[e], t_bottom = bottom[e];
      const int p = pruned[e];
      const float as = std::fabs(s);
      // false for NaN, inf, and a code that underflowed (subnormal, or 0 from a nonzero x)
      const int ok = (as < 0x1p62f) & ((as >= 0x1p-126f) | (xv == 0.f));
      const float fl = std::floor(s);
      const float rc = kRnd ? (s - fl >= 0.5f ? fl + 1.f : fl) : fl;
      const float rounded = rc * inv[e];
      const int above = rc > hi[e], below = rc < lo[e];
      float v = rounded;
      if constexpr (kOv == Overflow::kSat || kOv == Overflow::kSatSym) {
        v = below ? t_bottom : v;
        v = above ? t_top : v;
      }
      if constexpr (kOv == Overflow::kSatZero) v = (above | below) ? 0.f : v;
      yr[e] = p ? 0.f : v;
      const int scalar = (ok ^ 1) | (wrap_now & (above | below));
      int region = above * kAbove + below * kBelow;
      region = scalar ? kScalar : region;
      region = p ? kPruned : region;
      gr[e] = static_cast<uint8_t>(region);
    }
  }
}

template <bool kRnd>
void forward_mode(const Table& t, const float* x, float* out, uint8_t* reg, int64_t n) {
  switch (t.overflow) {
    case Overflow::kWrap:
      return forward_rows<kRnd, Overflow::kWrap>(t, x, out, reg, n);
    case Overflow::kSat:
      return forward_rows<kRnd, Overflow::kSat>(t, x, out, reg, n);
    case Overflow::kSatSym:
      return forward_rows<kRnd, Overflow::kSatSym>(t, x, out, reg, n);
    case Overflow::kSatZero:
      return forward_rows<kRnd, Overflow::kSatZero>(t, x, out, reg, n);
  }
}

// Element by element through the scalar definition and its surrogate: the exact path, for a tensor holding
// an element the float path could not take.
void backward_exact(const Table& t, const float* x, const float* g, int64_t n, float* gx, double* df_acc,
                    double* di_acc) {
  const int64_t nb = t.nb();
  for (int64_t r0 = 0; r0 < n; r0 += nb) {
    for (int64_t e = 0; e < nb; ++e) {
      const int64_t j = r0 + e;
      const FixedType ty = type_of(t, e);
      const LocalGrad lg = quantize_surrogate(x[j], quantize_traced(x[j], prepare(ty), 0.5, !t.training), ty);
      if (gx) gx[j] += g[j] * static_cast<float>(lg.dx);
      if (df_acc) df_acc[e] += static_cast<double>(g[j]) * static_cast<float>(lg.df);
      if (di_acc) di_acc[e] += static_cast<double>(g[j]) * static_cast<float>(lg.di);
    }
  }
}

// The same without scalar elements, as selects the compiler vectorises; sums in the same order.
template <bool kRnd, bool kGx>
void backward_rows(const Table& t, const float* __restrict x, const uint8_t* __restrict region,
                   const float* __restrict g, int64_t n, float* __restrict gx, double* __restrict df_acc,
                   double* __restrict di_acc) {
  const int64_t nb = t.nb();
  const int wrap = t.overflow == Overflow::kWrap, unsigned_sat = !wrap && t.k == 0;
  const float* __restrict scale = t.scale.data();
  const float* __restrict inv = t.inv.data();
  const float* __restrict adf = t.above_df.data();
  const float* __restrict adi = t.above_di.data();
  const float* __restrict bdf = t.below_df.data();
  const float* __restrict bdi = t.below_di.data();
  for (int64_t r0 = 0; r0 < n; r0 += nb) {
    const float* __restrict xr = x + r0;
    const float* __restrict gr = g + r0;
    const uint8_t* __restrict rr = region + r0;
    for (int64_t e = 0; e < nb; ++e) {
      const float xv = xr[e], gv = gr[e];
      const int reg = rr[e], pr = reg == kPruned, above = reg == kAbove;
      const int straight = ((reg == kInside) | wrap) & (pr ^ 1);
      const float s = xv * scale[e], fl = std::floor(s);
      const float rounded = (kRnd ? (s - fl >= 0.5f ? fl + 1.f : fl) : fl) * inv[e];
      const float df_in = static_cast<float>(kLn2 * (static_cast<double>(xv) - static_cast<double>(rounded)));
      const int dead = unsigned_sat & (xv < 0.f);
      const float pr_grad = dead ? 0.f : static_cast<float>(kLn2 * static_cast<double>(xv));
      float df = above ? adf[e] : bdf[e], di = above ? adi[e] : bdi[e];
      df = straight ? df_in : df;
      di = straight ? 0.f : di;
      df = pr ? pr_grad : df;
      di = pr ? (wrap ? 0.f : pr_grad) : di;
      if constexpr (kGx) gx[r0 + e] += gv * (straight ? 1.f : 0.f);
      df_acc[e] += static_cast<double>(gv) * df;
      di_acc[e] += static_cast<double>(gv) * di;
    }
  }
}

}  // namespace

std::shared_ptr<const Table> make_table(int k, const std::vector<int>& i, const std::vector<int>& f,
                                        Round round, Overflow overflow, bool training) {
  if (round != Round::kRnd && round != Round::kTrn) return nullptr;
  KILN_CHECK(i.size() == f.size(), "qkernel::make_table: i and f differ in size");
  auto t = std::make_shared<Table>();
  t->round = round, t->overflow = overflow, t->k = k, t->training = training, t->i = i, t->f = f;
  const size_t nb = f.size();
  for (auto* v : {&t->scale, &t->inv, &t->hi, &t->lo, &t->top, &t->bottom, &t->above_df, &t->above_di,
                  &t->below_df, &t->below_di})
    v->resize(nb);
  t->pruned.resize(nb);
  for (size_t e = 0; e < nb; ++e) {
    const PreparedType p = prepare({k, i[e], f[e], round, overflow});
    const int width = k + i[e] + f[e];
    if (std::abs(f[e]) > 64 || (!p.pruned && (width > 24 || i[e] > 64))) return nullptr;
    t->pruned[e] = p.pruned;
    t->scale[e] = static_cast<float>(p.scale), t->inv[e] = static_cast<float>(p.inv);
    t->hi[e] = p.pruned ? 0.f : static_cast<float>(p.hi);
    t->lo[e] = p.pruned ? 0.f : static_cast<float>(p.lo);
    t->top[e] = static_cast<float>(t->hi[e] * p.inv), t->bottom[e] = static_cast<float>(t->lo[e] * p.inv);
    // The surrogate past the range (quantize_ops.h), as the scalar path computes and stores it.
    t->above_df[e] = static_cast<float>(std::ldexp(kLn2, -f[e]));
    t->above_di[e] = static_cast<float>(std::ldexp(kLn2, i[e]));
    t->below_df[e] = static_cast<float>(overflow == Overflow::kSatSym ? -k * std::ldexp(kLn2, -f[e]) : 0.0);
    t->below_di[e] = static_cast<float>(-k * std::ldexp(kLn2, i[e]));
  }
  return t;
}

void forward(const Table& t, const float* x, float* out, uint8_t* region, int64_t n) {
  const int64_t nb = t.nb();
  KILN_CHECK(nb > 0 && n % nb == 0, "qkernel::forward: " + std::to_string(n) + " elements for " +
                                        std::to_string(nb) + " bit entries");
  std::vector<uint8_t> own(region ? 0 : static_cast<size_t>(n));
  uint8_t* reg = region ? region : own.data();
  if (t.round == Round::kRnd)
    forward_mode<true>(t, x, out, reg, n);
  else
    forward_mode<false>(t, x, out, reg, n);
  // The scalar elements (WRAP overflows at inference, mostly) are few: chunks without one are skipped by a
  // vectorised test, where a byte-by-byte loop around the scalar call would cost more than the kernel.
  constexpr int64_t kChunk = 256;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t c1 = std::min(n, c0 + kChunk);
    int any = 0;
    for (int64_t j = c0; j < c1; ++j) any |= reg[j] == kScalar;
    if (!any) continue;
    for (int64_t j = c0; j < c1; ++j) {
      if (reg[j] != kScalar) continue;
      const PreparedType p = prepare(type_of(t, j % nb));
      out[j] = static_cast<float>(quantize_traced(x[j], p, 0.5, !t.training).value);
    }
  }
}

void backward(const Table& t, const float* x, const uint8_t* region, const float* g, int64_t n, float* gx,
              double* df_acc, double* di_acc) {
  const int64_t nb = t.nb();
  bool any_scalar = false;
  for (int64_t j = 0; j < n; ++j) any_scalar |= region[j] == kScalar;
  if (any_scalar) return backward_exact(t, x, g, n, gx, df_acc, di_acc);
  // Sums nobody asked for go to scratch: the loop stays free of branches.
  std::vector<double> scratch_f(df_acc ? 0 : static_cast<size_t>(nb)),
      scratch_i(di_acc ? 0 : static_cast<size_t>(nb));
  double* df = df_acc ? df_acc : scratch_f.data();
  double* di = di_acc ? di_acc : scratch_i.data();
  const bool rnd = t.round == Round::kRnd;
  if (gx)
    (rnd ? backward_rows<true, true> : backward_rows<false, true>)(t, x, region, g, n, gx, df, di);
  else
    (rnd ? backward_rows<true, false> : backward_rows<false, false>)(t, x, region, g, n, gx, df, di);
}

}  // namespace kiln::compress::qkernel
