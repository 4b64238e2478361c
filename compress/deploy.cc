#include "compress/deploy.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "compress/avg_pool.h"

namespace kiln::compress {

Window window_of(const Shape& in, const Shape& out, const nn::Geometry& g) {
  const bool two = g.dims == 2;
  Window w;
  w.H = two ? in[0] : 1, w.W = in[two ? 1 : 0], w.C = in.back();
  w.KH = two ? g.window[0] : 1, w.KW = g.window[two ? 1 : 0];
  w.SH = two ? g.strides[0] : 1, w.SW = g.strides[two ? 1 : 0];
  w.OH = two ? out[0] : 1, w.OW = out[two ? 1 : 0];
  w.PH = two ? conv_pad_before(w.H, w.KH, w.SH, g.padding) : 0,
  w.PW = conv_pad_before(w.W, w.KW, w.SW, g.padding);
  return w;
}

bool Window::padded() const {
  return PH > 0 || PW > 0 || (OH - 1) * SH - PH + KH > H || (OW - 1) * SW - PW + KW > W;
}

int64_t requantize(int64_t c, int fc, const FixedType& t) {
  const int w = t.k + t.i + t.f;
  if (w <= 0) return 0;  // zero width: pruned
  KILN_CHECK(w < 62, "fixed-point width " + std::to_string(w) + " too wide for int64 codes");
  int64_t q;
  const int s = fc - t.f;
  if (s <= 0) {
    KILN_CHECK(-s < 62, "shift by " + std::to_string(-s));
    q = c * (int64_t{1} << -s);  // finer target grid: exact
  } else if (s >= 63) {
    // |c| < 2^62, so |c| / 2^s < 1/2: every nearest mode gives 0, TRN floors, TRN_ZERO truncates.
    q = (t.round == Round::kTrn && c < 0) ? -1 : 0;
  } else {
    const int64_t step = int64_t{1} << s, half = step >> 1;
    q = c >> s;                      // floor (arithmetic shift)
    const int64_t r = c - q * step;  // 0 <= r < step
    bool up = false;
    switch (t.round) {
      case Round::kTrn:
        up = false;
        break;
      case Round::kTrnZero:
        up = c < 0 && r != 0;
        break;
      case Round::kRnd:
      case Round::kStochastic:
        up = r >= half;
        break;
      case Round::kRndZero:
        up = r > half || (r == half && q < 0);
        break;
      case Round::kRndMinInf:
        up = r > half;
        break;
      case Round::kRndInf:
        up = r > half || (r == half && q >= 0);
        break;
      case Round::kRndConv:
        up = r > half || (r == half && (q & 1) != 0);
        break;
    }
    q += up ? 1 : 0;
  }
  // Overflow on the code grid: [lo, hi] = [-k 2^(i+f), 2^(i+f) - 1].
  const int mag = t.i + t.f;  // w - k
  const int64_t hi = mag >= 0 ? (int64_t{1} << mag) - 1 : 0;
  // SAT_SYM's range is symmetric: even the exact minimum code maps to -max (-2.0 -> -1.75 in ap_fixed<4,2>).
  const int64_t lo = t.k ? (t.overflow == Overflow::kSatSym ? -hi : -(int64_t{1} << mag)) : 0;
  if (q >= lo && q <= hi) return q;
  switch (t.overflow) {
    case Overflow::kWrap: {
      const int64_t mod = int64_t{1} << w;
      int64_t m = q & (mod - 1);  // two's complement: q mod 2^w
      if (t.k && m >= (mod >> 1)) m -= mod;
      return m;
    }
    case Overflow::kSat:
      return q < lo ? lo : hi;
    case Overflow::kSatSym:
      return q < lo ? (t.k ? -hi : 0) : hi;
    case Overflow::kSatZero:
      return 0;
  }
  return q;
}

namespace {

// The (k, i, f, round, overflow) of element e of a quantizer's tensor (bits per tensor, channel or element).
std::vector<FixedType> element_types(const FixedQuantizer& q) {
  int64_t n = shape_numel(q.shape()), nb = q.f().size(), c = q.shape().empty() ? 1 : q.shape().back();
  std::vector<FixedType> out(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    int64_t b = nb == 1 ? 0 : (nb == n ? e : e % c);
    out[static_cast<size_t>(e)] = {q.k(), static_cast<int>(std::lround(q.i()[b])),
                                   static_cast<int>(std::lround(q.f()[b])), q.spec().round,
                                   q.spec().overflow};
  }
  return out;
}

// Codes and fractional bits of a parameter quantized by q (as the inference-mode forward does).
void quantize_param(const FixedQuantizer& q, const Tensor& v, std::vector<int64_t>* code,
                    std::vector<int>* frac, std::vector<FixedType>* types) {
  *types = element_types(q);
  for (int64_t e = 0; e < v.size(); ++e) {
    const FixedType& t = (*types)[static_cast<size_t>(e)];
    double xq = quantize(static_cast<double>(v[e]), t);
    code->push_back(to_code(xq, t.f));
    frac->push_back(t.f);
  }
}

DeployedModel::Step make_step(DeployedModel::Step::Kind kind, const std::string& name) {
  DeployedModel::Step s;
  s.kind = kind;
  s.name = name;
  return s;
}

int ceil_log2(double v) { return v <= 1 ? 0 : static_cast<int>(std::ceil(std::log2(v))); }

// The step that applies activation `act` of layer l (a Dense/Conv's, or an activation layer's) as the
// quantized model computes it: ReLU, hard tanh, or hls4ml's tables through the layer's LutActivation.
template <class Refuse>
void add_activation(std::vector<DeployedModel::Step>& steps, const nn::Layer& l, const std::string& act,
                    const std::string& name, Shape shape, Refuse&& refuse) {
  using Step = DeployedModel::Step;
  if (act == "linear" || act.empty()) return;  // "": a layer without an activation (BatchNorm)
  Step s = make_step(Step::kRelu, name);
  s.in_shape = s.out_shape = std::move(shape);
  const auto* t = dynamic_cast<const LutActivation*>(l.transform(nn::Slot::kActivation));
  if (act == "relu") {
    s.kind = Step::kRelu;
  } else if (!t) {
    refuse("activation '" + act +
           "' has no fixed-point form (relu and linear deploy; sigmoid, tanh and softmax deploy " +
           "through hls4ml's tables, with use_lut_activations: true)");
  } else if (t->function() == "hard_tanh") {
    s.kind = Step::kHardTanh;
  } else if (t->function() == "softmax") {
    s.kind = Step::kSoftmax, s.softmax = t->softmax_table(), s.softmax_tables = softmax_tables(s.softmax);
  } else {
    s.kind = Step::kLut, s.lut = t->table(), s.table = lut_table_codes(s.lut);
  }
  steps.push_back(std::move(s));
}

}  // namespace

DeployedModel DeployedModel::freeze(nn::Model& m, const QuantizedModel& q) {
  std::map<const nn::Layer*, const LayerQuant*> quant;
  std::map<const nn::Layer*, bool> folded;
  for (const auto& l : q.layers()) {
    quant[l.layer] = &l;
    if (l.folded_bn) folded[l.folded_bn] = true;
  }
  DeployedModel d;
  d.in_size_ = shape_numel(m.input_shape());
  bool first = true;
  const std::vector<nn::Layer*> layers = m.layers();
  // Open residual blocks, innermost last: the index of the first layer after the body, and the steps that
  // end the block (the body output's quantizer, if any, and the add).
  std::vector<std::pair<size_t, std::vector<Step>>> open;
  auto close_blocks = [&](size_t li) {
    for (; !open.empty() && open.back().first <= li; open.pop_back())
      for (Step& s : open.back().second) d.steps_.push_back(std::move(s));
  };
  for (size_t li = 0; li < layers.size(); ++li) {
    close_blocks(li);
    nn::Layer* l = layers[li];
    const std::string type = l->type();
    auto refuse = [&](const std::string& why) {
      throw InputError("cannot deploy layer '" + l->name() + "' (" + type + "): " + why);
    };
    if (type == "flatten" || type == "reshape" || type == "dropout") continue;  // codes are flat per sample
    if (type == "residual") {
      if (first) refuse("a residual block before the first quantized layer has no fixed-point input");
      std::vector<nn::Layer*> inside;
      l->collect(inside);  // the block itself, then its body
      Step save = make_step(Step::kSave, l->name() + ".input"),
           add = make_step(Step::kAdd, l->name() + ".add");
      save.in_shape = save.out_shape = add.in_shape = add.out_shape = l->input_shape();
      std::vector<Step> end;
      if (auto it = quant.find(l); it != quant.end()) {  // the add's input quantizers
        save.types = element_types(*it->second->input);
        Step qb = make_step(Step::kQuantize, l->name() + ".input2_q");
        qb.in_shape = qb.out_shape = l->output_shape();
        qb.types = element_types(*it->second->input2);
        end.push_back(qb);
      }
      end.push_back(add);
      d.steps_.push_back(save);
      open.emplace_back(li + inside.size(), std::move(end));
      continue;
    }
    if (type == "batch_norm") {
      if (folded.count(l)) continue;  // its map is in the preceding layer's weights
      if (!quant.count(l)) refuse("a BatchNorm deploys folded into the Dense/Conv before it, or quantized");
    }
    if (type == "linear" || type == "activation" || nn::is_activation_type(type)) {
      if (first && l->activation_name() != "linear")
        refuse("an activation before the first quantized layer has no fixed-point input");
      add_activation(d.steps_, *l, l->activation_name(), l->name(), l->output_shape(), refuse);
      continue;
    }
    if (const nn::Geometry* g = l->geometry(); g && !l->has_slot(nn::Slot::kWeight)) {
      auto it = quant.find(l);
      if (it != quant.end()) {
        Step qs = make_step(Step::kQuantize, l->name() + ".input_q");
        qs.in_shape = qs.out_shape = l->input_shape();
        qs.types = element_types(*it->second->input);
        qs.from_float = first;
        d.steps_.push_back(qs);
        first = false;
      }
      Step s = make_step(g->max ? Step::kMaxPool : Step::kAvgPool, l->name());
      s.in_shape = l->input_shape(), s.out_shape = pool_output_shape(*l), s.geom = *g;
      if (!g->max) {
        if (it == quant.end()) refuse("an average pooling layer deploys only with its input quantized");
        // The sum of a window must stay exact in the float average training computes (avg_pool.h).
        s.out_frac = finest_frac(*it->second->input);
        int64_t top = 0, most = 0;
        for (const FixedType& t : element_types(*it->second->input))
          if (t.k + t.i + t.f > 0)
            top = std::max(top, int64_t{1} << std::min(40, std::max(0, t.i + s.out_frac)));
        for (int64_t c : window_counts(s.in_shape, s.out_shape, *g)) most = std::max(most, c);
        if (top * most >= (int64_t{1} << 21))
          refuse("a window sum reaches 2^" + std::to_string(ceil_log2(static_cast<double>(top * most))) +
                 " on the grid 2^-" + std::to_string(s.out_frac) +
                 "; average pooling deploys up to 2^21 (fewer input bits)");
      }
      d.steps_.push_back(s);
      continue;
    }
    if (!l->has_slot(nn::Slot::kWeight)) refuse("not supported by the deployed fixed-point model");
    auto it = quant.find(l);
    if (it == quant.end()) refuse("the layer is not quantized (enable quantization for it)");
    const LayerQuant& lq = *it->second;
    // 1. The input quantizer.
    Step qs = make_step(Step::kQuantize, l->name() + ".input_q");
    qs.in_shape = qs.out_shape = l->input_shape();
    qs.types = element_types(*lq.input);
    qs.from_float = first;
    int fx = -1000, ix = -1000;
    for (const auto& t : qs.types) fx = std::max(fx, t.f), ix = std::max(ix, t.i);
    d.steps_.push_back(qs);
    // 2. The multiply-accumulate, every output on one grid of F fractional bits.
    Step s = make_step(Step::kMac, l->name());
    s.in_shape = l->input_shape(), s.out_shape = l->output_shape();
    s.dense = l->geometry() == nullptr;
    if (!s.dense) s.geom = *l->geometry();
    Var scale, shift;
    const bool norm = l->inference_affine(&scale, &shift);
    if (norm) {  // an unfolded BatchNorm: a depthwise 1x1 convolution with its scale and shift
      s.dense = false;
      s.geom = nn::Geometry{};
      s.geom.dims = s.in_shape.size() == 3 ? 2 : 1;
      s.geom.window = s.geom.strides = std::vector<int>(static_cast<size_t>(s.geom.dims), 1);
      s.geom.depthwise = true;
      if (s.in_shape.size() == 1) s.in_shape = s.out_shape = Shape{1, s.in_shape[0]};
    }
    nn::Parameter* w = l->param("weight");
    const Tensor wv = norm             ? scale.value()
                      : lq.fold_weight ? lq.fold_weight->fold_value(w->var.value())
                                       : w->var.value();
    quantize_param(*lq.weight, wv, &s.w_code, &s.w_frac, &s.w_types);
    int fw = -1000, iw = -1000;
    for (const auto& t : s.w_types) fw = std::max(fw, t.f), iw = std::max(iw, t.i);
    int fb = -1000, ib = -1000;
    if (lq.bias) {
      const Tensor bv = norm ? shift.value() : l->param("bias")->var.value();
      quantize_param(*lq.bias, lq.fold_bias ? lq.fold_bias->fold_value(bv) : bv, &s.b_code, &s.b_frac,
                     &s.b_types);
      for (const auto& t : s.b_types) fb = std::max(fb, t.f), ib = std::max(ib, t.i);
    }
    s.out_frac = std::max(fx + fw, fb);
    // Accumulator bound: terms per output * 2^(ix + iw) (+ 2^ib), on a grid of 2^-F, plus a sign bit.
    int64_t terms = shape_numel(lq.weight->shape()) / std::max<int64_t>(1, s.out_shape.back());
    if (!s.dense && s.geom.depthwise) terms = shape_numel(lq.weight->shape()) / s.out_shape.back();
    int acc_int = std::max(ceil_log2(static_cast<double>(terms)) + ix + iw + 2, ib + 1);
    int acc_bits = acc_int + s.out_frac + 1;
    if (acc_bits > 62)
      refuse("accumulator needs " + std::to_string(acc_bits) + " bits, more than int64 holds");
    d.max_acc_bits_ = std::max(d.max_acc_bits_, acc_bits);
    d.steps_.push_back(s);
    const std::string act = l->activation_name();
    add_activation(d.steps_, *l, act, l->name() + "." + act, l->output_shape(), refuse);
    first = false;
  }
  close_blocks(layers.size());
  if (first) throw InputError("the model has no quantized layer to deploy");
  d.out_size_ = shape_numel(m.output_shape());
  return d;
}

namespace {

// One sample's tensor: codes and the fractional bits of each element.
struct Codes {
  std::vector<int64_t> code;
  std::vector<int> frac;
};

void run_mac(const DeployedModel::Step& s, const Codes& in, Codes* out) {
  const int F = s.out_frac;
  auto term = [&](int64_t xi, int64_t wi) -> int64_t {
    int64_t p = in.code[static_cast<size_t>(xi)] * s.w_code[static_cast<size_t>(wi)];
    return p * (int64_t{1} << (F - in.frac[static_cast<size_t>(xi)] - s.w_frac[static_cast<size_t>(wi)]));
  };
  int64_t n_out = shape_numel(s.out_shape), f_out = s.out_shape.back();
  out->code.assign(static_cast<size_t>(n_out), 0);
  out->frac.assign(static_cast<size_t>(n_out), F);
  auto bias = [&](int64_t ch) -> int64_t {
    if (s.b_code.empty()) return 0;
    return s.b_code[static_cast<size_t>(ch)] * (int64_t{1} << (F - s.b_frac[static_cast<size_t>(ch)]));
  };
  if (s.dense) {  // [..., K] x [K, N]
    int64_t k = s.in_shape.back(), rows = n_out / f_out;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < f_out; ++n) {
        int64_t acc = bias(n);
        for (int64_t j = 0; j < k; ++j) acc += term(r * k + j, j * f_out + n);
        out->code[static_cast<size_t>(r * f_out + n)] = acc;
      }
    return;
  }
  // Convolution, channels-last; 1-d is 2-d with H = 1.
  const Window win = window_of(s.in_shape, s.out_shape, s.geom);
  for (int64_t oh = 0; oh < win.OH; ++oh)
    for (int64_t ow = 0; ow < win.OW; ++ow)
      for (int64_t n = 0; n < f_out; ++n) {
        int64_t acc = bias(n);
        win.for_each_tap(oh, ow, [&](int64_t tap, int64_t base) {
          if (s.geom.depthwise) {
            acc += term(base + n, tap * win.C + n);
          } else {
            for (int64_t c = 0; c < win.C; ++c) acc += term(base + c, (tap * win.C + c) * f_out + n);
          }
        });
        out->code[static_cast<size_t>((oh * win.OW + ow) * f_out + n)] = acc;
      }
}

// trunc(window sum / real inputs) on the grid 2^-s.out_frac (every non-pruned input is on it).
void run_avg_pool(const DeployedModel::Step& s, const Codes& in, Codes* out) {
  const Window win = window_of(s.in_shape, s.out_shape, s.geom);
  const int F = s.out_frac;
  out->code.assign(static_cast<size_t>(win.OH * win.OW * win.C), 0);
  out->frac.assign(out->code.size(), F);
  for (int64_t oh = 0; oh < win.OH; ++oh)
    for (int64_t ow = 0; ow < win.OW; ++ow)
      for (int64_t c = 0; c < win.C; ++c) {
        int64_t sum = 0, n = 0;
        win.for_each_tap(oh, ow, [&](int64_t, int64_t base) {
          const size_t xi = static_cast<size_t>(base + c);
          ++n;
          if (in.code[xi] != 0) sum += in.code[xi] * (int64_t{1} << (F - in.frac[xi]));
        });
        out->code[static_cast<size_t>((oh * win.OW + ow) * win.C + c)] = sum / n;  // toward zero
      }
}

void run_max_pool(const DeployedModel::Step& s, const Codes& in, Codes* out) {
  const Window win = window_of(s.in_shape, s.out_shape, s.geom);
  const int64_t C = win.C;
  int fmax = 0;
  for (int f : in.frac) fmax = std::max(fmax, f);
  out->code.assign(static_cast<size_t>(win.OH * win.OW * C), 0);
  out->frac.assign(out->code.size(), fmax);
  for (int64_t oh = 0; oh < win.OH; ++oh)
    for (int64_t ow = 0; ow < win.OW; ++ow)
      for (int64_t c = 0; c < C; ++c) {
        bool any = false;
        int64_t best = 0;
        win.for_each_tap(oh, ow, [&](int64_t, int64_t base) {  // padding never wins
          const size_t xi = static_cast<size_t>(base + c);
          const int64_t v = in.code[xi] * (int64_t{1} << (fmax - in.frac[xi]));  // aligned to fmax
          if (!any || v > best) best = v, any = true;
        });
        out->code[static_cast<size_t>((oh * win.OW + ow) * C + c)] = best;
      }
}

}  // namespace

std::vector<double> DeployedModel::forward(const Tensor& x) const {
  int64_t n = x.dim(0);
  if (x.size() != n * in_size_)
    throw ShapeError("deployed model: input " + shape_str(x.shape()) + " has " +
                     std::to_string(x.size() / std::max<int64_t>(n, 1)) +
                     " values per sample, the model takes " + std::to_string(in_size_));
  std::vector<double> out(static_cast<size_t>(n * out_size_));
  for (int64_t r = 0; r < n; ++r) {
    Codes cur, next;
    std::vector<Codes> kept;  // residual inputs, innermost last
    for (const Step& s : steps_) {
      switch (s.kind) {
        case Step::kQuantize:
          next.code.resize(s.types.size());
          next.frac.resize(s.types.size());
          for (size_t e = 0; e < s.types.size(); ++e) {
            const FixedType& t = s.types[e];
            next.code[e] =
                s.from_float
                    ? to_code(quantize(static_cast<double>(x[r * in_size_ + static_cast<int64_t>(e)]), t),
                              t.f)
                    : requantize(cur.code[e], cur.frac[e], t);
            next.frac[e] = t.f;
          }
          std::swap(cur, next);
          break;
        case Step::kMac:
          run_mac(s, cur, &next);
          std::swap(cur, next);
          break;
        case Step::kRelu:
          for (auto& c : cur.code) c = std::max<int64_t>(c, 0);
          break;
        case Step::kLut:
          for (size_t e = 0; e < cur.code.size(); ++e) {
            cur.code[e] = s.table[static_cast<size_t>(lut_index_code(cur.code[e], cur.frac[e], s.lut))];
            cur.frac[e] = s.lut.table_type.f;
          }
          break;
        case Step::kHardTanh:
          for (size_t e = 0; e < cur.code.size(); ++e) {
            if (cur.frac[e] < 0)
              cur.code[e] *= int64_t{1} << -cur.frac[e], cur.frac[e] = 0;  // 1 must be on the grid
            const int64_t one = int64_t{1} << cur.frac[e];
            cur.code[e] = std::clamp(cur.code[e], -one, one);
          }
          break;
        case Step::kSoftmax: {
          const int64_t lane = s.out_shape.back();
          next.code.resize(cur.code.size());
          next.frac.assign(cur.code.size(), softmax_out_frac(s.softmax));
          for (size_t b = 0; b < cur.code.size(); b += static_cast<size_t>(lane))
            softmax_codes(s.softmax, s.softmax_tables, &cur.code[b], &cur.frac[b], lane, &next.code[b]);
          std::swap(cur, next);
          break;
        }
        case Step::kMaxPool:
          run_max_pool(s, cur, &next);
          std::swap(cur, next);
          break;
        case Step::kAvgPool:
          run_avg_pool(s, cur, &next);
          std::swap(cur, next);
          break;
        case Step::kSave:
          kept.push_back(cur);
          for (size_t e = 0; e < s.types.size(); ++e) {  // the add's quantizer on the block's input
            Codes& k = kept.back();
            k.code[e] = requantize(k.code[e], k.frac[e], s.types[e]);
            k.frac[e] = s.types[e].f;
          }
          break;
        case Step::kAdd: {
          const Codes& a = kept.back();
          for (size_t e = 0; e < cur.code.size(); ++e) {
            const int f = std::max(cur.frac[e], a.frac[e]);
            cur.code[e] =
                cur.code[e] * (int64_t{1} << (f - cur.frac[e])) + a.code[e] * (int64_t{1} << (f - a.frac[e]));
            cur.frac[e] = f;
          }
          kept.pop_back();
          break;
        }
        case Step::kNone:
          break;
      }
    }
    for (int64_t j = 0; j < out_size_; ++j)
      out[static_cast<size_t>(r * out_size_ + j)] = std::ldexp(
          static_cast<double>(cur.code[static_cast<size_t>(j)]), -cur.frac[static_cast<size_t>(j)]);
  }
  return out;
}

// The name of a step kind: a switch without default, so a new kind without a name fails to compile
// (-Werror=switch in KILN_COPTS) instead of reading past a table.
const char* step_kind_name(DeployedModel::Step::Kind k) {
  using S = DeployedModel::Step;
  switch (k) {
    case S::kQuantize:
      return "quantize";
    case S::kMac:
      return "multiply-accumulate";
    case S::kRelu:
      return "relu";
    case S::kMaxPool:
      return "max-pool";
    case S::kLut:
      return "table";
    case S::kHardTanh:
      return "hard tanh";
    case S::kSoftmax:
      return "softmax";
    case S::kAvgPool:
      return "average-pool";
    case S::kSave:
      return "keep";
    case S::kAdd:
      return "residual add";
    case S::kNone:
      return "none";
  }
  return "?";  // not reached: every kind is named above
}

std::string DeployedModel::describe() const {
  std::ostringstream os;
  for (const Step& s : steps_) {
    os << s.name << ": " << step_kind_name(s.kind);
    if (s.kind == Step::kMac) os << ", accumulator on 2^-" << s.out_frac;
    os << '\n';
  }
  os << "widest accumulator: " << max_acc_bits_ << " bits\n";
  return os.str();
}

}  // namespace kiln::compress
