#include "compress/hgq.h"

#include <cmath>

#include "compress/avg_pool.h"
#include "compress/layer_norm_fixed.h"
#include "engine/ops.h"

namespace kiln::compress {

namespace {
// Features per head of an attention layer (its input is [T, 3 * heads * dh]).
int64_t attention_head_dim(const nn::Layer& l) { return l.input_shape().back() / 3 / l.heads(); }
}  // namespace

QuantizedModel::QuantizedModel(nn::Model& m, const HgqOptions& o)
    : attention_softmax_(o.attention_softmax_table) {
  std::vector<nn::Layer*> all = m.layers();
  for (const auto& [name, ov] : o.layer_specific) {
    bool found = false;
    for (nn::Layer* l : all) found = found || l->name() == name;
    if (!found) {
      std::string names;
      for (nn::Layer* l : all)
        if (l->has_slot(nn::Slot::kInput)) names += (names.empty() ? "" : ", ") + l->name();
      throw InputError("layer_specific names layer '" + name +
                       "', which the model does not have (quantizable layers: " + names + ")");
    }
  }
  // Whether the tensor reaching each layer is non-negative (after a ReLU or a sum of squares, through pooling
  // and reshapes): its input quantizer is then unsigned (k = 0), as a ReLU's output type is in hardware.
  bool non_negative = false;
  // Open residual blocks, innermost last: the first layer after the body, the block, whether its input is
  // non-negative. At the end of the body the add gets its two input quantizers.
  struct Open {
    size_t end;
    nn::Layer* block;
    bool input_non_negative;
  };
  std::vector<Open> open;
  auto close_blocks = [&](size_t li) {
    for (; !open.empty() && open.back().end <= li; open.pop_back()) {
      nn::Layer* r = open.back().block;
      const bool body_non_negative = non_negative;
      non_negative = open.back().input_non_negative && body_non_negative;
      auto ov = o.layer_specific.find(r->name());
      if (ov != o.layer_specific.end() && !ov->second.enable) continue;
      QuantSpec spec = ov == o.layer_specific.end() ? o.data : ov->second.specs.at(nn::Slot::kInput);
      LayerQuant q;
      q.layer = r;
      QuantSpec skip = spec, body = spec;
      if (open.back().input_non_negative) skip.k = 0;
      if (body_non_negative) body.k = 0;
      q.input = std::make_shared<FixedQuantizer>(r->name() + ".input_q", skip, r->input_shape());
      q.input2 = std::make_shared<FixedQuantizer>(r->name() + ".input2_q", body, r->output_shape());
      r->set_transform(nn::Slot::kInput, q.input);
      r->set_transform(nn::Slot::kInput2, q.input2);
      layers_.push_back(q);
    }
  };
  for (size_t li = 0; li < all.size(); ++li) {
    close_blocks(li);
    nn::Layer* l = all[li];
    const bool input_non_negative = non_negative;
    const std::string t = l->type(), a = l->activation_name();
    if (t == "residual") {
      std::vector<nn::Layer*> inside;
      l->collect(inside);  // the block, then its body
      open.push_back({li + inside.size(), l, non_negative});
      continue;
    }
    if (a == "relu")
      non_negative = true;
    else if (a == "sigmoid" || a == "softmax" || t == "sum_squares")
      non_negative = true;
    // Only these pass the sign through; not vae_sampling, whose z = mu + eps sigma in training takes either
    // sign.
    else if (!(t == "flatten" || t == "reshape" || t == "dropout" || t.find("pool") != std::string::npos))
      non_negative = false;
    auto ov = o.layer_specific.find(l->name());
    if (ov != o.layer_specific.end() && !ov->second.enable) continue;
    std::string act = l->activation_name();
    if (t == "attention") {  // the softmax of the scores through its table, with the 1/sqrt(d) scale in it
      SoftmaxLutSpec s = o.attention_softmax_table;
      s.scale = 1.0 / std::sqrt(static_cast<double>(attention_head_dim(*l)));
      activations_.push_back(std::make_shared<LutActivation>(s));
      l->set_transform(nn::Slot::kActivation, activations_.back());
    } else if (l->has_slot(nn::Slot::kActivation) &&
               (act == "sigmoid" || act == "tanh" || act == "softmax" || act == "gelu")) {
      std::string fn = act == "tanh" && !o.use_real_tanh ? "hard_tanh" : act;
      if (o.use_lut_activations || fn == "hard_tanh") {
        activations_.push_back(std::make_shared<LutActivation>(fn, o));
        l->set_transform(nn::Slot::kActivation, activations_.back());
      }
    }
    if (!l->has_slot(nn::Slot::kInput)) continue;
    auto spec = [&](nn::Slot s, const QuantSpec& d) {
      return ov == o.layer_specific.end() ? d : ov->second.specs.at(s);
    };
    LayerQuant q;
    q.layer = l;
    QuantSpec in_spec = spec(nn::Slot::kInput, o.data);
    if (input_non_negative) in_spec.k = 0;
    q.input = std::make_shared<FixedQuantizer>(l->name() + ".input_q", in_spec, l->input_shape());
    l->set_transform(nn::Slot::kInput, q.input);
    if (t == "layer_norm" || t == "positional_embedding") {
      // LayerNorm: gamma as the weight, beta as the bias, the normalisation as the hardware computes it.
      // A positional embedding: its table as the weight, added to the quantized input.
      const bool ln = t == "layer_norm";
      nn::Parameter* w = l->param(ln ? "gamma" : "table");
      q.weight = std::make_shared<FixedQuantizer>(l->name() + ".weight_q", spec(nn::Slot::kWeight, o.weight),
                                                  w->var.shape());
      l->set_transform(nn::Slot::kWeight, q.weight);
      if (ln) {
        q.bias = std::make_shared<FixedQuantizer>(l->name() + ".bias_q", spec(nn::Slot::kBias, o.bias),
                                                  l->param("beta")->var.shape());
        l->set_transform(nn::Slot::kBias, q.bias);
        l->set_transform(nn::Slot::kActivation, std::make_shared<LayerNormFixed>(q.input, l->epsilon()));
      }
      layers_.push_back(q);
      continue;
    }
    if (!l->has_slot(nn::Slot::kWeight)) {  // pooling: its input, and an average's rounding
      if (const nn::Geometry* g = l->geometry(); g && !g->max)
        l->set_transform(nn::Slot::kOutput, std::make_shared<AvgPoolRound>(*l, q.input));
      layers_.push_back(q);
      continue;
    }
    // The multiplier: a Dense/Conv kernel, or an unfolded BatchNorm's per-channel scale (and its shift as the
    // bias).
    Var scale, shift;
    const bool norm = l->inference_affine(&scale, &shift);
    nn::Parameter* w = l->param("weight");
    q.weight = std::make_shared<FixedQuantizer>(l->name() + ".weight_q", spec(nn::Slot::kWeight, o.weight),
                                                norm ? scale.shape() : w->var.shape());
    l->set_transform(nn::Slot::kWeight, q.weight);
    if (nn::Parameter* b = norm ? nullptr : l->param("bias"); b || norm) {
      q.bias = std::make_shared<FixedQuantizer>(l->name() + ".bias_q", spec(nn::Slot::kBias, o.bias),
                                                norm ? shift.shape() : b->var.shape());
      l->set_transform(nn::Slot::kBias, q.bias);
    }
    nn::Layer* next = li + 1 < all.size() ? all[li + 1] : nullptr;
    Var probe_scale, probe_shift;
    if (!norm && o.fold_batch_norm && next && l->activation_name() == "linear" &&
        next->inference_affine(&probe_scale, &probe_shift)) {
      if (!q.bias)
        throw InputError("layer '" + l->name() + "' is followed by BatchNorm '" + next->name() +
                         "': give it use_bias: true so that the BatchNorm can be folded into it (or set "
                         "fold_batch_norm: false)");
      q.folded_bn = next;
      q.fold_weight = std::make_shared<FoldedParam>(next, false, q.weight);
      q.fold_bias = std::make_shared<FoldedParam>(next, true, q.bias);
      l->set_transform(nn::Slot::kWeight, q.fold_weight);
      l->set_transform(nn::Slot::kBias, q.fold_bias);
      next->set_folded(true);
    }
    layers_.push_back(q);
  }
  close_blocks(all.size());
}

std::vector<FixedQuantizer*> QuantizedModel::quantizers() const {
  std::vector<FixedQuantizer*> out;
  for (const auto& l : layers_)
    for (auto* q : {l.input.get(), l.input2.get(), l.weight.get(), l.bias.get()})
      if (q) out.push_back(q);
  return out;
}

// EBOPs (quantization.md, section 4). Dense/Conv/unfolded BatchNorm: sum over every multiply the layer
// performs of b_input * b_weight, computed by running the layer's own kernel on the bit maps, plus
// mean(b_bias) per output. Pooling: the sum of its input bits. Sum of squares: sum b_i^2 (each input
// multiplies itself). Residual add: per element the sum of both inputs' bits minus their minimum (the wider
// one), times 0.65, as HGQ2 counts an add.
namespace {
// An elementwise add of tensors with bits a and b: per element the wider one's bits, times 0.65.
Var add_ebops(const Var& a, const Var& b) {
  return mul_scalar(sum_all(add(b, relu(sub(a, b)))), kAddEbopsScale);  // max(a, b) = b + relu(a - b)
}
}  // namespace

Var QuantizedModel::ebops(const LayerQuant& l) const {
  if (l.input2) return add_ebops(l.input->bits(), l.input2->bits());
  if (l.layer->type() == "attention") return attention_ebops(*l.layer, l.input->bits());
  if (l.layer->type() == "positional_embedding") return add_ebops(l.input->bits(), l.weight->bits());
  if (l.layer->type() == "layer_norm")
    return layer_norm_ebops(*l.layer, l.input->bits(), l.weight->bits(), l.bias->bits());
  if (l.layer->type() == "sum_squares") return sum_all(square(l.input->bits()));  // x_i * x_i: b_i^2
  if (!l.weight) return sum_all(l.input->bits());
  Shape in{1};
  for (int64_t d : l.layer->input_shape()) in.push_back(d);
  Var products = l.layer->apply_kernel(reshape(l.input->bits(), in), l.weight->bits());
  Var e = sum_all(products);
  if (l.bias) {
    float n_out = static_cast<float>(shape_numel(l.layer->output_shape()));
    e = add(e, mul_scalar(mean_all(l.bias->bits()), n_out));
  }
  return e;
}

// Attention over x [T, 3D] = (Q, K, V): every score multiplies q[i, c] by k[j, c] (the head's features c), so
// sum_{i,j,c} bq bk = sum_c (sum_i bq[i, c]) (sum_j bk[j, c]); every context term multiplies a probability
// (the softmax result type's width) by v[j, c], T times over.
Var QuantizedModel::attention_ebops(const nn::Layer& l, const Var& bits) const {
  const int64_t t = l.input_shape()[0], d = l.input_shape()[1] / 3;
  const Var cols = sum(bits, 0);  // [3D]: bits summed over the tokens
  const Var scores = sum_all(mul(slice(cols, 0, 0, d), slice(cols, 0, d, 2 * d)));
  const auto& r = attention_softmax_.result_type;
  const float wp = static_cast<float>(r ? r->k + r->i + r->f : 16);
  return add(scores, mul_scalar(sum_all(slice(cols, 0, 2 * d, 3 * d)), wp * static_cast<float>(t)));
}

// LayerNorm per token of n features: n multiplies of the deviation by the table's 1/sqrt (the input's bits
// times the table's width) and n of x^ by gamma (x^'s width times gamma's bits), plus beta's adds.
Var QuantizedModel::layer_norm_ebops(const nn::Layer& l, const Var& bx, const Var& bg, const Var& bb) const {
  const int64_t n = l.input_shape().back(), tokens = shape_numel(l.input_shape()) / n;
  const float w_table = static_cast<float>(kLnTableFrac + 2), w_xhat = static_cast<float>(kLnFrac + 4);
  Var e = mul_scalar(sum_all(bx), w_table);
  e = add(e, mul_scalar(sum_all(bg), w_xhat * static_cast<float>(tokens)));
  return add(e, mul_scalar(sum_all(bb), static_cast<float>(tokens)));
}

double QuantizedModel::uniform_ebops(double bits) const {
  NoGradGuard ng;
  double total = 0;
  for (const auto& l : layers_) {
    const double n_in = static_cast<double>(shape_numel(l.layer->input_shape()));
    if (l.input2 || l.layer->type() == "positional_embedding") {  // an add per element
      total += n_in * bits * kAddEbopsScale;
      continue;
    }
    auto full = [&](const Shape& s) { return Var(Tensor(s, static_cast<float>(bits))); };
    if (l.layer->type() == "layer_norm") {
      total +=
          layer_norm_ebops(*l.layer, full(l.input->shape()), full(l.weight->shape()), full(l.bias->shape()))
              .value()[0];
      continue;
    }
    if (l.layer->type() == "attention") {
      total += attention_ebops(*l.layer, full(l.layer->input_shape())).value()[0];
      continue;
    }
    if (!l.weight) {
      total += n_in * (l.layer->type() == "sum_squares" ? bits * bits : bits);
      continue;
    }
    Shape in{1};
    for (int64_t d : l.layer->input_shape()) in.push_back(d);
    Var macs = sum_all(l.layer->apply_kernel(Var(Tensor(in, 1.f)), Var(Tensor(l.weight->shape(), 1.f))));
    total += macs.value()[0] * bits * bits;
    if (l.bias) total += static_cast<double>(shape_numel(l.layer->output_shape())) * bits;
  }
  return total;
}

Var QuantizedModel::total_ebops() const {
  Var total(Tensor(Shape{}, 0.f));
  for (const auto& l : layers_) total = add(total, ebops(l));
  return total;
}

double QuantizedModel::ebops_value() const {
  NoGradGuard ng;
  return total_ebops().value()[0];
}

Var QuantizedModel::sum_bits() const {
  Var total(Tensor(Shape{}, 0.f));
  for (FixedQuantizer* q : quantizers()) total = add(total, sum_all(q->bits()));
  return total;
}

double QuantizedModel::mean_bits(bool activations) const {
  double s = 0, n = 0;
  for (FixedQuantizer* q : quantizers()) {
    if (q->spec().activation != activations) continue;
    Tensor b = q->bits_value();
    s += b.vec().cast<double>().sum();
    n += static_cast<double>(b.size());
  }
  return n > 0 ? s / n : 0;
}

void QuantizedModel::calibrate(nn::Model& m, const Tensor& x, int64_t batch_size) {
  // Only WRAP activations follow the data (as HGQ2's trace_minmax resets only those); SAT ones keep the
  // integer bits they trained.
  for (FixedQuantizer* q : quantizers())
    if (q->follows_data()) q->begin_calibration();
  NoGradGuard ng;
  nn::Context ctx;
  int64_t n = x.dim(0), per = x.size() / std::max<int64_t>(n, 1);
  for (int64_t s = 0; s < n; s += batch_size) {
    int64_t b = std::min(batch_size, n - s);
    Shape bs = x.shape();
    bs[0] = b;
    Tensor xb = Tensor::uninitialized(bs);
    std::copy_n(x.data() + s * per, b * per, xb.data());
    m.forward(Var(xb), ctx);
  }
  for (FixedQuantizer* q : quantizers())
    if (q->follows_data()) q->end_calibration();
}

LutActivation::LutActivation(const SoftmaxLutSpec& softmax) : function_("softmax"), softmax_(softmax) {}

LutActivation::LutActivation(std::string function, const HgqOptions& o)
    : function_(std::move(function)),
      sigmoid_(o.sigmoid_table),
      tanh_(o.tanh_table),
      gelu_(o.gelu_table),
      softmax_(o.softmax_table) {}

Var LutActivation::apply(const Var& x, nn::Context&) {
  if (function_ == "sigmoid") return sigmoid_lut(x, sigmoid_);
  if (function_ == "tanh") return tanh_lut(x, tanh_);
  if (function_ == "gelu") return gelu_lut(x, gelu_);
  if (function_ == "softmax") return softmax_lut(x, -1, softmax_);
  return clamp(x, -1.f, 1.f);  // hard tanh
}

Var FoldedParam::fold(const Var& v) const {
  Var scale, shift;
  bn_->inference_affine(&scale, &shift);
  return is_bias_ ? add(mul(v, scale), shift)
                  : mul(v, scale);  // (b - mean) * scale + beta = b * scale + shift
}

Tensor FoldedParam::fold_value(const Tensor& v) const {
  NoGradGuard ng;
  return fold(Var(v)).value();
}

}  // namespace kiln::compress
