#include "compress/hgq.h"

#include <cmath>
#include <sstream>

#include "compress/avg_pool.h"
#include "compress/layer_norm_fixed.h"
#include "engine/ops.h"

namespace kiln::compress {

namespace {

// A bit-width key: finite and within +-kMaxBits (the quantizer's own limit); beyond it the integer
// conversions of a bit count overflow.
double bits(const Config& cfg, const char* key, double fallback) {
  const double v = cfg.get<double>(key, fallback);
  if (!(std::fabs(v) <= kMaxBits)) {
    std::ostringstream os;
    os << key << " must be a bit width between -" << kMaxBits << " and " << kMaxBits << ", got " << v;
    cfg.fail(key, os.str());
  }
  return v;
}

// One slot's spec: `base` overridden by the keys of `c` (layer_specific entries).
QuantSpec read_spec(const Config& c, QuantSpec base) {
  c.check_unused({"integer_bits", "fractional_bits", "keep_negatives", "round_mode", "overflow_mode",
                  "granularity", "trainable"});
  base.i = bits(c, "integer_bits", base.i);
  base.f = bits(c, "fractional_bits", base.f);
  base.k = c.get<bool>("keep_negatives", base.k == 1) ? 1 : 0;
  try {
    if (c.has("round_mode")) base.round = parse_round(c.get<std::string>("round_mode", ""));
    if (c.has("overflow_mode")) base.overflow = parse_overflow(c.get<std::string>("overflow_mode", ""));
    if (c.has("granularity")) base.granularity = parse_granularity(c.get<std::string>("granularity", ""));
  } catch (const InputError& e) {
    c.fail(c.has("granularity") ? "granularity" : "round_mode", e.what());
  }
  bool trainable = c.get<bool>("trainable", base.train_f);
  base.train_f = trainable;
  base.train_i = trainable && base.overflow != Overflow::kWrap;
  return base;
}

}  // namespace

HgqOptions parse_quantization(const Config& c) {
  HgqOptions o;
  c.check_unused({"enable_quantization",
                  "use_high_granularity_quantization",
                  "default_integer_bits",
                  "default_fractional_bits",
                  "default_data_integer_bits",
                  "default_data_fractional_bits",
                  "default_data_keep_negatives",
                  "round_mode",
                  "overflow_mode_parameters",
                  "overflow_mode_data",
                  "use_symmetric_quantization",
                  "granularity",
                  "data_granularity",
                  "hgq_beta",
                  "hgq_gamma",
                  "beta_schedule",
                  "target_ebops",
                  "pid",
                  "freeze_bits",
                  "bit_range",
                  "layer_specific",
                  "use_lut_activations",
                  "use_real_tanh",
                  "sigmoid_table",
                  "tanh_table",
                  "softmax_table",
                  "attention_softmax_table",
                  "gelu_table",
                  "fold_batch_norm"});
  o.fold_batch_norm = c.get<bool>("fold_batch_norm", true);
  o.use_lut_activations = c.get<bool>("use_lut_activations", true);
  o.use_real_tanh = c.get<bool>("use_real_tanh", false);
  auto table = [&](const char* key, const std::vector<std::string>& keys) {
    Config t = c.child(key);
    t.check_unused(keys);
    return t;
  };
  o.sigmoid_table = parse_lut(table("sigmoid_table", lut_config_keys()), LutFunction::kSigmoid);
  o.tanh_table = parse_lut(table("tanh_table", lut_config_keys()), LutFunction::kTanh);
  o.gelu_table = parse_lut(table("gelu_table", lut_config_keys()), LutFunction::kGelu);
  o.softmax_table = parse_softmax_lut(table("softmax_table", softmax_lut_config_keys()));
  o.attention_softmax_table = parse_softmax_lut(table("attention_softmax_table", softmax_lut_config_keys()),
                                                HgqOptions::default_attention_softmax());
  o.enable = c.get<bool>("enable_quantization", true);
  bool hgq = c.get<bool>("use_high_granularity_quantization", true);
  auto mode = [&](const char* key, auto parse, auto fallback) {
    if (!c.has(key)) return fallback;
    try {
      return parse(c.get<std::string>(key, ""));
    } catch (const InputError& e) {
      c.fail(key, e.what());
    }
  };
  Round round = mode("round_mode", parse_round, Round::kRnd);
  Overflow ov_p = mode("overflow_mode_parameters", parse_overflow, Overflow::kSat);
  Overflow ov_d = mode("overflow_mode_data", parse_overflow, Overflow::kSat);
  if (c.get<bool>("use_symmetric_quantization", false)) ov_p = Overflow::kSatSym;
  Granularity g_p = mode("granularity", parse_granularity, Granularity::kElement);
  Granularity g_d = mode("data_granularity", parse_granularity, Granularity::kElement);

  o.weight.i = bits(c, "default_integer_bits", 0.0);
  o.weight.f = bits(c, "default_fractional_bits", 7.0);
  o.weight.round = round, o.weight.overflow = ov_p, o.weight.granularity = g_p;
  o.weight.train_f = hgq, o.weight.train_i = hgq && ov_p != Overflow::kWrap;
  o.bias = o.weight;
  o.data.k = c.get<bool>("default_data_keep_negatives", true) ? 1 : 0;
  o.data.i = bits(c, "default_data_integer_bits", 0.0);
  o.data.f = bits(c, "default_data_fractional_bits", 7.0);
  o.data.round = round, o.data.overflow = ov_d, o.data.granularity = g_d, o.data.activation = true;
  o.data.train_f = hgq, o.data.train_i = hgq && ov_d != Overflow::kWrap;

  Config br = c.child("bit_range");
  br.check_unused({"min_fractional_bits", "max_fractional_bits", "min_integer_bits", "max_integer_bits"});
  for (QuantSpec* s : {&o.weight, &o.bias, &o.data}) {
    s->f_min = bits(br, "min_fractional_bits", s->f_min);
    s->f_max = bits(br, "max_fractional_bits", s->f_max);
    s->i_min = bits(br, "min_integer_bits", s->i_min);
    s->i_max = bits(br, "max_integer_bits", s->i_max);
    if (s->f_min > s->f_max || s->i_min > s->i_max)
      br.fail("min_fractional_bits", "bit_range: a minimum exceeds its maximum");
  }

  o.beta = c.get<double>("hgq_beta", 1e-5);
  o.gamma = c.get<double>("hgq_gamma", 0.0);
  if (o.beta < 0) c.fail("hgq_beta", "hgq_beta must be >= 0");
  if (o.gamma < 0) c.fail("hgq_gamma", "hgq_gamma must be >= 0");
  Config bs = c.child("beta_schedule");
  bs.check_unused({"type", "start_epoch", "end_epoch", "final_beta"});
  o.schedule.type = bs.get<std::string>("type", "constant");
  if (o.schedule.type != "constant" && o.schedule.type != "linear" && o.schedule.type != "log")
    bs.fail("type", "unknown beta_schedule '" + o.schedule.type + "' (valid: constant, linear, log)");
  o.schedule.start_epoch = bs.get<double>("start_epoch", 0.0);
  o.schedule.end_epoch = bs.get<double>("end_epoch", 0.0);
  o.schedule.final_beta = bs.get<double>("final_beta", o.beta);
  if (o.schedule.type != "constant" && o.schedule.end_epoch <= o.schedule.start_epoch)
    bs.fail("end_epoch", "end_epoch must be after start_epoch");
  if (o.schedule.type == "log" && (o.beta <= 0 || o.schedule.final_beta <= 0))
    bs.fail("final_beta", "a log beta_schedule needs hgq_beta and final_beta > 0");
  o.pid.target_ebops = c.get<double>("target_ebops", 0.0);
  Config pid = c.child("pid");
  pid.check_unused({"p", "i", "d"});
  o.pid.p = pid.get<double>("p", o.pid.p);
  o.pid.i = pid.get<double>("i", o.pid.i);
  o.pid.d = pid.get<double>("d", o.pid.d);

  Config fz = c.child("freeze_bits");
  fz.check_unused({"epoch", "ebops"});
  o.freeze.epoch = fz.get<int>("epoch", 0);
  o.freeze.ebops = fz.get<double>("ebops", 0.0);
  if (o.freeze.epoch < 0) fz.fail("epoch", "freeze_bits epoch must be >= 0 (0: never)");
  if (o.freeze.ebops < 0) fz.fail("ebops", "freeze_bits ebops must be >= 0 (0: never)");

  Config ls = c.child("layer_specific");
  for (auto it = ls.node().begin(); it != ls.node().end(); ++it) {
    std::string name = it->first.as<std::string>();
    Config lc = ls.child(name);
    lc.check_unused({"enable", "input", "weight", "bias"});
    LayerQuantOverride ov;
    ov.enable = lc.get<bool>("enable", true);
    ov.specs[nn::Slot::kInput] = read_spec(lc.child("input"), o.data);
    ov.specs[nn::Slot::kWeight] = read_spec(lc.child("weight"), o.weight);
    ov.specs[nn::Slot::kBias] = read_spec(lc.child("bias"), o.bias);
    o.layer_specific[name] = ov;
  }
  return o;
}

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

SoftmaxLutSpec HgqOptions::default_attention_softmax() {
  SoftmaxLutSpec s;
  s.input_type = {1, 6, 9, Round::kRnd, Overflow::kSat};
  return s;
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

double scheduled_beta(const HgqOptions& o, int epoch) {
  const BetaSchedule& s = o.schedule;
  if (s.type == "constant" || epoch <= s.start_epoch) return o.beta;
  if (epoch >= s.end_epoch) return s.final_beta;
  double t = (epoch - s.start_epoch) / (s.end_epoch - s.start_epoch);
  if (s.type == "linear") return o.beta + t * (s.final_beta - o.beta);
  return o.beta * std::pow(s.final_beta / o.beta, t);  // log: geometric
}

HgqLoss::HgqLoss(std::shared_ptr<QuantizedModel> qm, HgqOptions o)
    : qm_(std::move(qm)), o_(std::move(o)), beta_(o_.beta) {}

void HgqLoss::start_epoch(int epoch) { beta_ = scheduled_beta(o_, epoch) * pid_scale_; }

Var HgqLoss::loss() {
  Var l = mul_scalar(qm_->total_ebops(), static_cast<float>(beta_));
  if (o_.gamma > 0) l = add(l, mul_scalar(qm_->sum_bits(), static_cast<float>(o_.gamma)));
  return l;
}

std::vector<std::pair<std::string, double>> HgqLoss::stats() {
  std::vector<std::pair<std::string, double>> s = {{"ebops", qm_->ebops_value()},
                                                   {"beta", beta_},
                                                   {"mean_weight_bits", qm_->mean_bits(false)},
                                                   {"mean_input_bits", qm_->mean_bits(true)}};
  if (o_.freeze.epoch > 0 || o_.freeze.ebops > 0) s.emplace_back("bits_frozen", frozen_ ? 1.0 : 0.0);
  return s;
}

// PID on the log-ratio of EBOPs to the target: beta is scaled by exp(p e + i sum(e) + d (e - e_prev)).
void HgqLoss::resume(const std::vector<train::EpochRecord>& history) {
  pid_integral_ = 0, pid_prev_ = 0, pid_scale_ = 1;
  bool freeze_now = false;
  for (const auto& r : history)
    for (const auto& [key, value] : r.extra)
      if (key == "ebops") update_pid(value), freeze_now = freeze_now || freezes_at(r.epoch, value);
  // The checkpoint holds the bits as they were frozen (restored after every step).
  if (freeze_now) freeze();
}

void HgqLoss::end_epoch(const train::EpochRecord& r) {
  const bool may_freeze = !frozen_ && (o_.freeze.epoch > 0 || o_.freeze.ebops > 0);
  if (o_.pid.target_ebops <= 0 && !may_freeze) return;
  const double ebops = qm_->ebops_value();
  if (o_.pid.target_ebops > 0) update_pid(ebops);
  if (may_freeze && freezes_at(r.epoch, ebops)) freeze();
}

bool HgqLoss::freezes_at(int epoch, double ebops) const {
  return (o_.freeze.epoch > 0 && epoch >= o_.freeze.epoch) ||
         (o_.freeze.ebops > 0 && ebops <= o_.freeze.ebops);
}

void HgqLoss::freeze() {
  frozen_ = true;
  for (FixedQuantizer* q : qm_->quantizers()) q->freeze_bits();
}

void HgqLoss::after_step() {
  if (frozen_)
    for (FixedQuantizer* q : qm_->quantizers()) q->restore_frozen_bits();
}

void HgqLoss::update_pid(double ebops) {
  if (o_.pid.target_ebops <= 0) return;
  double e = std::log(std::max(ebops, 1e-9) / o_.pid.target_ebops);
  pid_integral_ += e;
  pid_scale_ = std::exp(o_.pid.p * e + o_.pid.i * pid_integral_ + o_.pid.d * (e - pid_prev_));
  pid_prev_ = e;
}

}  // namespace kiln::compress
