// Differentiable fixed-point and minifloat quantizers. The forward computes each element with the exact
// scalar semantics (fixed_point.cc, minifloat.cc) and, when a gradient is wanted, the element's local
// derivatives (the surrogate documented in the header); the backward multiplies them by the output gradient.
#include "compress/quantize_ops.h"

#include <cmath>
#include <string>
#include <vector>

#include "compress/quantize_kernel.h"
#include "engine/broadcast.h"
#include "engine/check.h"

namespace kiln::compress {

// Every quantizer's f and i go through this at every training step, so the loop is written to vectorise:
// for |v| <= kMaxBits, trunc(v) and v - trunc(v) are exact in float, and adding sign(v) where
// |v - trunc(v)| >= 0.5 is lround's half away from zero.
std::vector<int> rounded_bits(const Tensor& t, const char* name) {
  const int64_t n = t.size();
  const float* v = t.data();
  int bad = 0;
  for (int64_t j = 0; j < n; ++j) bad |= !(std::fabs(v[j]) <= static_cast<float>(kMaxBits));
  if (bad)
    for (int64_t j = 0; j < n; ++j)
      if (!(std::fabs(v[j]) <= static_cast<float>(kMaxBits)))
        throw InputError(std::string("quantize_fixed: ") + name + "[" + std::to_string(j) +
                         "] = " + std::to_string(v[j]) + " is not a bit width (|" + name +
                         "| <= " + std::to_string(kMaxBits) + ")");
  std::vector<int> out(static_cast<size_t>(n));
  int* o = out.data();
  for (int64_t j = 0; j < n; ++j) {
    const float tr = std::trunc(v[j]);
    const float away = std::fabs(v[j] - tr) >= 0.5f ? std::copysign(1.f, v[j]) : 0.f;
    o[j] = static_cast<int>(tr + away);
  }
  return out;
}

namespace {

constexpr double kLn2 = 0.69314718055994530942;

void check_broadcasts_to(const Shape& s, const Shape& xs, const char* name) {
  bool ok = s.size() <= xs.size();
  for (size_t d = 0; ok && d < s.size(); ++d) {
    int64_t a = s[s.size() - 1 - d], b = xs[xs.size() - 1 - d];
    ok = a == b || a == 1;
  }
  if (!ok)
    throw ShapeError(std::string("quantize_fixed: ") + name + " of shape " + shape_str(s) +
                     " does not broadcast to x of shape " + shape_str(xs));
}

// A uniform double in [0, 1) from 53 random bits (exactly representable, never 1).
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1p-53; }

// True when bits of shape b broadcast to x's shape as "element j uses entry j % numel(b)": per tensor, or b
// equal to x's trailing axes (per channel, per sample element, per element).
bool modulo_broadcast(const Shape& b, const Shape& xs) {
  size_t lead = 0;
  while (lead + 1 < b.size() && b[lead] == 1) ++lead;  // leading 1s broadcast like absent axes
  if (shape_numel(b) == 1) return true;
  const size_t m = b.size() - lead;
  if (m > xs.size()) return false;
  for (size_t d = 0; d < m; ++d)
    if (b[lead + d] != xs[xs.size() - m + d]) return false;
  return true;
}

// The fast path (quantize_kernel.h): the same values and gradients as the element loop below.
Var quantize_fast(const Var& x, const Var& f, const Var& i, std::shared_ptr<const qkernel::Table> table) {
  const int64_t n = x.size();
  Tensor out = Tensor::uninitialized(x.shape());
  const bool exact = qkernel::forward(*table, x.value().data(), out.data(), n) != 0;
  return make_result(std::move(out), "quantize_fixed", {x, f, i},
                     [table = std::move(table), exact](Node& self) {
                       Node& nx = *self.inputs[0];
                       Node& nf = *self.inputs[1];
                       Node& ni = *self.inputs[2];
                       const int64_t nb = table->nb();
                       std::vector<double> df(nf.requires_grad ? static_cast<size_t>(nb) : 0);
                       std::vector<double> di(ni.requires_grad ? static_cast<size_t>(nb) : 0);
                       bool fresh = false;
                       const int64_t n = self.value.size();
                       const float* g = self.grad.data();
                       float* gx = nullptr;
                       if (nx.requires_grad && !exact && nx.take_grad(self)) {
                         // x's gradient would be a fresh buffer: it takes this output's and is written in
                         // place, one buffer less to allocate and fill.
                         gx = nx.grad.data(), g = gx;
                       } else if (nx.requires_grad) {
                         gx = nx.grad_buffer_unfilled(&fresh).data();
                       }
                       qkernel::backward(*table, nx.value.data(), exact, g, n, gx, fresh,
                                         df.empty() ? nullptr : df.data(), di.empty() ? nullptr : di.data());
                       // One entry per bit; f and i have the same shape here (shape_numel == nb).
                       add_sums(nf, df);
                       add_sums(ni, di);
                     });
}

// qkernel::make_table costs about 25 ns per bit entry: for a weight quantizer (fc1's 51,200 entries) more
// than its kernels. Bits change rarely from one step to the next, so each thread keeps the last table per
// quantizer (keyed by the address of its f, which stays put across steps) and reuses it while mode and
// rounded bits are equal, or updates a copy of it where a few rounded bits moved. Compared by value: an
// entry's constants depend on the mode and its own bits only, so a reused or updated table is exactly the
// one make_table would build, whatever the key. One slot per key bounds the memory to one table per
// quantizer.
std::shared_ptr<const qkernel::Table> cached_table(const void* key, int k, const std::vector<int>& ib,
                                                   const std::vector<int>& fb, Round round, Overflow overflow,
                                                   bool training) {
  constexpr size_t kSlots = 32;  // more than a model's quantizers (two per layer)
  struct Slot {
    const void* key;
    std::shared_ptr<const qkernel::Table> table;
  };
  thread_local std::vector<Slot> cache;
  thread_local size_t next = 0;
  Slot* mine = nullptr;
  bool same_mode = false;
  for (Slot& s : cache) {
    if (s.key != key) continue;
    const qkernel::Table& t = *s.table;
    same_mode = t.k == k && t.round == round && t.overflow == overflow && t.training == training &&
                t.f.size() == fb.size();
    if (same_mode && t.f == fb && t.i == ib) return s.table;
    mine = &s;
    break;
  }
  // The same quantizer a step later: only the entries whose rounded bits moved are recomputed.
  auto t = same_mode ? qkernel::updated_table(*mine->table, ib, fb)
                     : qkernel::make_table(k, ib, fb, round, overflow, training);
  if (!t) return t;
  if (mine)
    mine->table = t;
  else if (cache.size() < kSlots)
    cache.push_back({key, t});
  else
    cache[next++ % kSlots] = {key, t};
  return t;
}

void check_k(int k) {
  if (k != 0 && k != 1)
    throw InputError("quantize_fixed: k (signed) must be 0 or 1, got " + std::to_string(k));
}

// The checks both paths share; returns the bits rounded to integers.
std::pair<std::vector<int>, std::vector<int>> checked_bits(const Var& x, const Var& f, const Var& i, int k,
                                                           bool stochastic, std::mt19937_64* rng) {
  check_k(k);
  check_broadcasts_to(f.shape(), x.shape(), "f");
  check_broadcasts_to(i.shape(), x.shape(), "i");
  KILN_CHECK(!stochastic || rng != nullptr, "stochastic rounding in training needs an rng");
  return {rounded_bits(f.value(), "f"), rounded_bits(i.value(), "i")};
}

// The vectorised path's table for bits that passed checked_bits (fb, ib), or null where quantize_fixed runs
// the element loop: stochastic rounding in training, f and i of different shapes, broadcasts other than
// "index modulo nb", types the table cannot hold.
std::shared_ptr<const qkernel::Table> table_for(const Var& x, const Var& f, const Var& i,
                                                const std::vector<int>& fb, const std::vector<int>& ib, int k,
                                                Round round, Overflow overflow, bool training) {
  if ((training && round == Round::kStochastic) || f.shape() != i.shape() ||
      !modulo_broadcast(f.shape(), x.shape()))
    return nullptr;
  return cached_table(f.value().data(), k, ib, fb, round, overflow, training);
}

bool recording(const Var& x, const Var& f, const Var& i) {
  return grad_enabled() && (x.requires_grad() || f.requires_grad() || i.requires_grad());
}

Var elementwise(const Var& x, const Var& f, const Var& i, int k, Round round, Overflow overflow,
                bool training, std::mt19937_64* rng, const std::vector<int>& fb, const std::vector<int>& ib);

}  // namespace

void add_sums(Node& node, const std::vector<double>& acc) {
  if (acc.empty()) return;
  float* gb = node.grad_buffer().data();
  for (size_t s = 0; s < acc.size(); ++s) gb[s] += static_cast<float>(acc[s]);
}

std::shared_ptr<const qkernel::Table> fast_table(const Var& x, const Var& f, const Var& i, int k, Round round,
                                                 Overflow overflow, bool training) {
  if (training && round == Round::kStochastic) return nullptr;
  auto [fb, ib] = checked_bits(x, f, i, k, false, nullptr);
  return table_for(x, f, i, fb, ib, k, round, overflow, training);
}

// dxq/dx, dxq/df, dxq/di of one element (the table in quantize_ops.h).
LocalGrad quantize_surrogate(double x, const Quantized& q, const FixedType& t) {
  bool wrap = t.overflow == Overflow::kWrap;
  switch (q.region) {
    case Region::kPruned: {
      if (!wrap && t.k == 0 && x < 0) return {0.0, 0.0, 0.0};
      double g = kLn2 * x;
      return {0.0, g, wrap ? 0.0 : g};
    }
    case Region::kInside:
      return {1.0, kLn2 * (x - q.rounded), 0.0};
    case Region::kAbove:
      if (wrap) return {1.0, kLn2 * (x - q.rounded), 0.0};
      return {0.0, std::ldexp(kLn2, -t.f), std::ldexp(kLn2, t.i)};
    case Region::kBelow:
      if (wrap) return {1.0, kLn2 * (x - q.rounded), 0.0};
      return {0.0, t.overflow == Overflow::kSatSym ? -t.k * std::ldexp(kLn2, -t.f) : 0.0,
              -t.k * std::ldexp(kLn2, t.i)};
  }
  KILN_CHECK(false, "bad region");
}

Var quantize_fixed(const Var& x, const Var& f, const Var& i, int k, Round round, Overflow overflow,
                   bool training, std::mt19937_64* rng) {
  const bool stochastic = training && round == Round::kStochastic;
  auto [fb, ib] = checked_bits(x, f, i, k, stochastic, rng);
  if (auto table = table_for(x, f, i, fb, ib, k, round, overflow, training))
    return quantize_fast(x, f, i, std::move(table));
  return elementwise(x, f, i, k, round, overflow, training, rng, fb, ib);
}

FixedPlan::FixedPlan(const Var& f, const Var& i, int k, Round round, Overflow overflow, bool training)
    : f_(f), i_(i), k_(k), round_(round), overflow_(overflow), training_(training) {
  KILN_CHECK(!(training && round == Round::kStochastic), "FixedPlan: stochastic rounding in training");
  // The checks of quantize_fixed that do not depend on x; the broadcasts to x's shape are checked per call.
  check_k(k);
  fb_ = rounded_bits(f.value(), "f"), ib_ = rounded_bits(i.value(), "i");
  if (f.shape() == i.shape()) table_ = qkernel::make_table(k, ib_, fb_, round, overflow, training);
}

Var FixedPlan::operator()(const Var& x) const {
  check_broadcasts_to(f_.shape(), x.shape(), "f");
  check_broadcasts_to(i_.shape(), x.shape(), "i");
  if (table_ && modulo_broadcast(f_.shape(), x.shape())) return quantize_fast(x, f_, i_, table_);
  return elementwise(x, f_, i_, k_, round_, overflow_, training_, nullptr, fb_, ib_);
}

Var quantize_fixed_reference(const Var& x, const Var& f, const Var& i, int k, Round round, Overflow overflow,
                             bool training, std::mt19937_64* rng) {
  auto [fb, ib] = checked_bits(x, f, i, k, training && round == Round::kStochastic, rng);
  return elementwise(x, f, i, k, round, overflow, training, rng, fb, ib);
}

namespace {

Var elementwise(const Var& x, const Var& f, const Var& i, int k, Round round, Overflow overflow,
                bool training, std::mt19937_64* rng, const std::vector<int>& fb, const std::vector<int>& ib) {
  const bool stochastic = training && round == Round::kStochastic;
  BroadcastMap mf(f.shape(), x.shape()), mi(i.shape(), x.shape());
  bool record = recording(x, f, i);

  int64_t n = x.size();
  Tensor out = Tensor::uninitialized(x.shape());
  std::vector<float> dx, df, di;  // local derivatives per element of x, only when recording
  if (record) {
    dx.resize(static_cast<size_t>(n));
    df.resize(static_cast<size_t>(n));
    di.resize(static_cast<size_t>(n));
  }
  // Each bit entry's type prepared once (f and i of one granularity share their entries; else per element).
  const bool shared = f.shape() == i.shape();
  std::vector<PreparedType> types;
  if (shared)
    for (size_t b = 0; b < fb.size(); ++b) types.push_back(prepare({k, ib[b], fb[b], round, overflow}));
  const float* px = x.value().data();
  for (int64_t j = 0; j < n; ++j) {
    const PreparedType p =
        shared
            ? types[static_cast<size_t>(mf(j))]
            : prepare({k, ib[static_cast<size_t>(mi(j))], fb[static_cast<size_t>(mf(j))], round, overflow});
    double u = stochastic ? uniform01(*rng) : 0.5;
    Quantized q = quantize_traced(px[j], p, u, /*wrap=*/!training);
    out[j] = static_cast<float>(q.value);
    if (record) {
      LocalGrad g = quantize_surrogate(px[j], q, p.t);
      size_t s = static_cast<size_t>(j);
      dx[s] = static_cast<float>(g.dx);
      df[s] = static_cast<float>(g.df);
      di[s] = static_cast<float>(g.di);
    }
  }
  return make_result(std::move(out), "quantize_fixed", {x, f, i},
                     [dx = std::move(dx), df = std::move(df), di = std::move(di), mf, mi](Node& self) {
                       const float* g = self.grad.data();
                       int64_t n = self.value.size();
                       Node& nx = *self.inputs[0];
                       if (nx.requires_grad) {
                         float* gx = nx.grad_buffer().data();
                         for (int64_t j = 0; j < n; ++j) gx[j] += g[j] * dx[static_cast<size_t>(j)];
                       }
                       // Sums over the broadcast axes, in double (a per-tensor f sums the whole tensor).
                       auto reduce = [&](Node& nb, const std::vector<float>& d, const BroadcastMap& m) {
                         if (!nb.requires_grad) return;
                         std::vector<double> acc(static_cast<size_t>(nb.value.size()), 0.0);
                         for (int64_t j = 0; j < n; ++j)
                           acc[static_cast<size_t>(m(j))] +=
                               static_cast<double>(g[j]) * d[static_cast<size_t>(j)];
                         add_sums(nb, acc);
                       };
                       reduce(*self.inputs[1], df, mf);
                       reduce(*self.inputs[2], di, mi);
                     });
}

}  // namespace

Var quantize_minifloat(const Var& x, const MiniFloat& t) {
  validate(t);
  int64_t n = x.size();
  Tensor out = Tensor::uninitialized(x.shape());
  bool record = grad_enabled() && x.requires_grad();
  std::vector<float> dx(record ? static_cast<size_t>(n) : 0);  // 1 where straight through, 0 where saturated
  const float* px = x.value().data();
  for (int64_t j = 0; j < n; ++j) {
    bool saturated = false;
    out[j] = static_cast<float>(quantize_minifloat(static_cast<double>(px[j]), t, &saturated));
    if (record) dx[static_cast<size_t>(j)] = saturated ? 0.f : 1.f;
  }
  return make_result(std::move(out), "quantize_minifloat", {x}, [dx = std::move(dx)](Node& self) {
    const float* g = self.grad.data();
    float* gx = self.inputs[0]->grad_buffer().data();
    for (int64_t j = 0; j < self.value.size(); ++j) gx[j] += g[j] * dx[static_cast<size_t>(j)];
  });
}

}  // namespace kiln::compress
