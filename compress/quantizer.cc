#include "compress/quantizer.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "compress/quantize_kernel.h"
#include "compress/quantize_ops.h"
#include "compress/quantize_pool.h"
#include "engine/ops.h"

namespace kiln::compress {

Granularity parse_granularity(const std::string& s) {
  if (s == "per_tensor") return Granularity::kTensor;
  if (s == "per_channel") return Granularity::kChannel;
  if (s == "per_weight" || s == "per_element") return Granularity::kElement;
  throw InputError("unknown granularity '" + s + "' (valid: per_tensor, per_channel, per_weight)");
}

FixedQuantizer::FixedQuantizer(std::string name, QuantSpec spec, Shape shape)
    : name_(std::move(name)),
      spec_(spec),
      shape_(std::move(shape)),
      k_(Shape{1}, static_cast<float>(spec.k)) {
  Shape bs = bits_shape(spec_.granularity);
  f_ = {name_ + ".f", Var(Tensor(bs, static_cast<float>(spec_.f)), spec_.train_f), false, Tensor()};
  i_ = {name_ + ".i", Var(Tensor(bs, static_cast<float>(spec_.i)), spec_.train_i), false, Tensor()};
}

Shape FixedQuantizer::bits_shape(Granularity g) const {
  if (g == Granularity::kTensor || shape_.empty()) return {1};
  if (g == Granularity::kChannel) return {shape_.back()};
  return shape_;
}

void FixedQuantizer::parameters(std::vector<nn::Parameter*>& out) {
  if (spec_.train_f) out.push_back(&f_);
  if (spec_.train_i) out.push_back(&i_);
}

void FixedQuantizer::buffers(std::vector<nn::Buffer>& out) {
  if (!spec_.train_f) out.push_back({f_.name, &f_.var.value()});
  if (!spec_.train_i) out.push_back({i_.name, &i_.var.value()});
  if (spec_.activation) out.push_back({name_ + ".k", &k_});
}

// Keeps trainable bits inside their range (a projection after each optimiser step).
void FixedQuantizer::clamp_bits() {
  if (spec_.train_f) f_.var.value().vec() = f_.var.value().vec().cwiseMax(spec_.f_min).cwiseMin(spec_.f_max);
  if (spec_.train_i) i_.var.value().vec() = i_.var.value().vec().cwiseMax(spec_.i_min).cwiseMin(spec_.i_max);
}

void FixedQuantizer::freeze_bits() {
  if (spec_.train_f) frozen_f_ = f_.var.value();
  if (spec_.train_i) frozen_i_ = i_.var.value();
}

void FixedQuantizer::restore_frozen_bits() {
  if (!frozen_f_.empty()) f_.var.value() = frozen_f_;
  if (!frozen_i_.empty()) i_.var.value() = frozen_i_;
}

// Reduces |x| (or min / max during calibration) over the batch and, for coarser granularity, over the
// elements sharing a bit width. Under WRAP in training, i follows the data: i <- max(i - 0.01, needed).
void FixedQuantizer::track_range(const Tensor& x, bool training) {
  // The range is used while calibrating and, under WRAP, in training; anywhere else (evaluation, the
  // deployed check) the pass over x would be thrown away.
  if (!calibrating_ && !(training && follows_data())) return;
  Tensor& iv = i_.var.value();
  const Tensor& fv = f_.var.value();
  int64_t nb = iv.size(), per_sample = shape_numel(shape_), n = x.size();
  if (per_sample == 0 || n % per_sample != 0) return;
  // Per tensor, per channel (the last axis) or per element: element j has entry j % nb in every case
  // (per_sample is a multiple of the channel count), so rows of nb reduce with contiguous, vectorised loops.
  KILN_CHECK(nb == 1 || nb == per_sample || (!shape_.empty() && nb == shape_.back()),
             "track_range: " + std::to_string(nb) + " bit entries for " + shape_str(shape_));
  // Calibration reduces straight into its running min / max: min and max are exact, and a tie keeps the
  // earlier value either way, so this is the batch's min / max merged in.
  if (calibrating_) return qkernel::column_min_max(x.data(), n, nb, lo_.data(), hi_.data());
  std::vector<float> lo(static_cast<size_t>(nb), std::numeric_limits<float>::infinity());
  std::vector<float> hi(static_cast<size_t>(nb), -std::numeric_limits<float>::infinity());
  qkernel::column_min_max(x.data(), n, nb, lo.data(), hi.data());
  for (int64_t b = 0; b < nb; ++b) {
    double m = std::max(std::fabs(lo[static_cast<size_t>(b)]), std::fabs(hi[static_cast<size_t>(b)]));
    // m is inf when the entry saw an inf (or only NaN): i becomes +inf, as it always did (under WRAP i is not
    // trained, so clamp_bits leaves it).
    const int f = static_cast<int>(std::round(fv[b]));
    double needed = !std::isfinite(m)         ? std::numeric_limits<double>::infinity()
                    : std::abs(f) <= kMaxBits ? integer_bits_for_nonneg(m, f)
                                              : integer_bits_for(m, f);
    iv[b] = static_cast<float>(std::max(static_cast<double>(iv[b]) - 0.01, needed));
  }
}

namespace {
bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.size())) == 0;
}
}  // namespace

Var FixedQuantizer::apply(const Var& x, nn::Context& ctx) {
  observe(x, ctx);
  return quantize(x, ctx);
}

void FixedQuantizer::observe(const Var& x, nn::Context& ctx) {
  if (ctx.training) clamp_bits();
  if (spec_.activation) track_range(x.value(), ctx.training);
}

Var FixedQuantizer::apply_max_pool2d(const Var& x, nn::Context& ctx, const PoolWindow2d& w) {
  // The fused op takes per-element bits of an activation, in the vectorised path's modes; the layer
  // composes the rest.
  if (!spec_.activation || (ctx.training && spec_.round == Round::kStochastic) || x.ndim() != 4 ||
      f_.var.shape() != Shape{x.dim(1), x.dim(2), x.dim(3)})
    return Var();
  observe(x, ctx);
  Var y;
  if (calibrating_) {
    y = quantize_max_pool2d(x, calibration_plan_->f(), calibration_plan_->i(), calibration_plan_->table(), w);
  } else if (auto table = fast_table(x, f_.var, i_.var, k(), spec_.round, spec_.overflow, ctx.training)) {
    y = quantize_max_pool2d(x, f_.var, i_.var, std::move(table), w);
  }
  // Where the fused op declines (an element for the scalar definition, windows that do not tile x): the two
  // ops apart, without observing x a second time.
  if (!y.defined()) y = max_pool2d(quantize(x, ctx), w.pool_h, w.pool_w, w.stride_h, w.stride_w, w.pad);
  return y;
}

Var FixedQuantizer::quantize(const Var& x, nn::Context& ctx) {
  // Calibration: x rounded at f only, the pass begin_calibration() prepared (the bits do not change).
  if (calibrating_) return (*calibration_plan_)(x);
  // Inference on a parameter: the same weights and bits give the same codes, so the last result is reused
  // while the tensors are bit-for-bit those it came from (no version counters to trust).
  const bool reuse = !ctx.training && !spec_.activation && !grad_enabled();
  if (reuse && cached_ && same_bits(x.value(), cache_x_) && same_bits(f_.var.value(), cache_f_) &&
      same_bits(i_.var.value(), cache_i_))
    return Var(cache_out_);
  // HGQ2 keeps activation values unwrapped in training: the running maximum above makes i large enough.
  Var out = quantize_fixed(x, f_.var, i_.var, k(), spec_.round, spec_.overflow, ctx.training, ctx.rng);
  if (reuse)
    cache_x_ = x.value(), cache_f_ = f_.var.value(), cache_i_ = i_.var.value(), cache_out_ = out.value(),
    cached_ = true;
  return out;
}

namespace {
// Forward: round half away from zero; backward: identity (straight through).
Var round_ste(const Var& v) {
  Tensor out = v.value();
  for (int64_t j = 0; j < out.size(); ++j) out[j] = std::round(out[j]);
  return make_result(std::move(out), "round_ste", {v},
                     [](Node& self) { self.inputs[0]->grad_buffer().vec() += self.grad.vec(); });
}
}  // namespace

Var FixedQuantizer::bits_graph() const {
  const bool masked = mask_ && mask_->shape() == shape_;
  Var b = add_scalar(add(round_ste(f_.var), round_ste(i_.var)), static_cast<float>(k()));
  return mul(relu(b), Var(masked ? *mask_ : Tensor(shape_, 1.f)));
}

// One op with that graph's values and gradients, bit for bit, where f and i have one shape whose entries
// the tensor's elements use as "index modulo nb" (per tensor, per channel, per element): the EBOPs term
// calls bits() on every quantizer at every step, and the graph's five nodes, their buffers and the
// broadcasting backward of mul cost more than the arithmetic. Per element j (entry e = j % nb) the value is
// relu(round(f[e]) + round(i[e]) + k) * mask[j]; the backward sums g * mask of each entry's elements in
// ascending j into a zero (mul's backward into relu's gradient), multiplies by relu's step (0 + ..., as a
// zero-filled gradient takes it) and adds that to f's and i's gradients (add and round_ste pass it on).
Var FixedQuantizer::bits() const {
  const bool masked = mask_ && mask_->shape() == shape_;
  const Var& f = f_.var;
  const Var& i = i_.var;
  const int64_t nb = f.size(), n = shape_numel(shape_);
  if (shape_.empty() || nb == 0 || i.shape() != f.shape() || broadcast_shapes(f.shape(), shape_) != shape_ ||
      n % nb != 0)
    return bits_graph();
  Tensor pre(f.shape());  // round(f) + round(i) + k, before relu
  const float kf = static_cast<float>(k());
  const float* pf = f.value().data();
  const float* pi = i.value().data();
  for (int64_t e = 0; e < nb; ++e) pre[e] = (std::round(pf[e]) + std::round(pi[e])) + kf;
  Tensor mask = masked ? *mask_ : Tensor();  // none: every element's factor is 1
  const float* pm = masked ? mask.data() : nullptr;
  Tensor out = Tensor::uninitialized(shape_);
  float* po = out.data();
  const float* pp = pre.data();
  // Element r0 + e uses entry e. (The loops are written twice: `pm ? pm[j] : 1.f` vectorised into masked
  // loads from the null pointer, which were the op's whole cost.)
  for (int64_t r0 = 0; r0 < n; r0 += nb)
    if (pm)
      for (int64_t e = 0; e < nb; ++e) po[r0 + e] = (pp[e] > 0.f ? pp[e] : 0.f) * pm[r0 + e];
    else
      for (int64_t e = 0; e < nb; ++e) po[r0 + e] = (pp[e] > 0.f ? pp[e] : 0.f) * 1.f;
  auto bwd = [pre = std::move(pre), mask = std::move(mask), nb](Node& self) {
    const int64_t n = self.value.size();
    const float* g = self.grad.data();
    const float* pm = mask.empty() ? nullptr : mask.data();
    const float* pp = pre.data();
    // mul's backward into relu's zero-filled gradient: each entry's g * mask, elements in order.
    std::vector<float> t(static_cast<size_t>(nb), 0.f);
    float* pt = t.data();
    for (int64_t r0 = 0; r0 < n; r0 += nb)
      if (pm)
        for (int64_t e = 0; e < nb; ++e) pt[e] += g[r0 + e] * pm[r0 + e];
      else
        for (int64_t e = 0; e < nb; ++e) pt[e] += g[r0 + e] * 1.f;
    // relu's backward into a zero-filled gradient; add_scalar, add and round_ste pass it on unchanged.
    for (int64_t e = 0; e < nb; ++e) pt[e] = 0.f + pt[e] * (pp[e] > 0.f ? 1.f : 0.f);
    for (Node* in : {self.inputs[0].get(), self.inputs[1].get()}) {
      if (!in->requires_grad) continue;
      float* d = in->grad_buffer().data();
      for (int64_t e = 0; e < nb; ++e) d[e] += pt[e];
    }
  };
  return make_result(std::move(out), "bits", {f, i}, std::move(bwd));
}

Tensor FixedQuantizer::bits_value() const {
  NoGradGuard ng;
  return bits().value();
}

void FixedQuantizer::begin_calibration() {
  KILN_CHECK(follows_data(), "begin_calibration: " + name_ +
                                 " is not a WRAP activation quantizer (only those follow the data)");
  calibrating_ = true;
  lo_ = Tensor(i_.var.shape(), std::numeric_limits<float>::infinity());
  hi_ = Tensor(i_.var.shape(), -std::numeric_limits<float>::infinity());
  // Calibration traces the values the deployed model sees once every activation's i covers its range: x
  // rounded at f and nothing else (HGQ2's trace_minmax runs its quantizers in their tracing mode), with
  // inference rounding (S_RND is RND there). Neither the i of the last training step nor its k may act:
  // wrapping with them, or zeroing an element they left without bits, would hand the next layers values that
  // calibration's own i no longer produces, and their ranges would come out wrong. So the pass runs in the
  // unwrapped (training) mode with k + i + f = 24, which keeps every element and the vectorised kernel.
  const Tensor& fv = f_.var.value();
  Tensor wide(fv.shape());
  for (int64_t e = 0; e < fv.size(); ++e) wide[e] = static_cast<float>(24 - k() - std::lround(fv[e]));
  const Round r = spec_.round == Round::kStochastic ? Round::kRnd : spec_.round;
  calibration_plan_ =
      std::make_shared<FixedPlan>(f_.var, Var(wide), k(), r, spec_.overflow, /*training=*/true);
}

void FixedQuantizer::end_calibration() {
  calibrating_ = false;
  calibration_plan_.reset();
  bool negative = false;
  for (int64_t b = 0; b < lo_.size(); ++b) negative = negative || lo_[b] < 0;
  k_[0] = negative ? 1.f : 0.f;
  for (int64_t b = 0; b < lo_.size(); ++b) {
    int f = static_cast<int>(std::lround(f_.var.value()[b]));
    i_.var.value()[b] = static_cast<float>(integer_bits_for(lo_[b], hi_[b], f, k()));
  }
}

}  // namespace kiln::compress
