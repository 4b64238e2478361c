#include "compress/deploy.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "compress/avg_pool.h"

namespace kiln::compress {

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

int ceil_log2(double v) { return v <= 1 ? 0 : static_cast<int>(std::ceil(std::log2(v))); }

// The op that applies activation `act` of layer l (a Dense/Conv's, or an activation layer's) as the
// quantized model computes it: ReLU, hard tanh, or hls4ml's tables through the layer's LutActivation.
template <class Refuse>
void add_activation(ProgramBuilder& b, const nn::Layer& l, const std::string& act, const std::string& name,
                    Refuse&& refuse) {
  if (act == "linear" || act.empty()) return;  // "": a layer without an activation (BatchNorm)
  const auto* t = dynamic_cast<const LutActivation*>(l.transform(nn::Slot::kActivation));
  if (act == "relu") {
    b.relu(name);
  } else if (!t) {
    refuse("activation '" + act +
           "' has no fixed-point form (relu and linear deploy; sigmoid, tanh and softmax deploy " +
           "through hls4ml's tables, with use_lut_activations: true)");
  } else if (t->function() == "hard_tanh") {
    b.hard_tanh(name);
  } else if (t->function() == "softmax") {
    b.softmax(name, t->softmax_table());
  } else {
    b.lut(name, t->table());
  }
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
  ProgramBuilder b;
  // A layer's input quantizer: the model input's (float -> codes) for the first quantized layer.
  auto quantize = [&](const std::string& name, const Shape& shape, const std::vector<FixedType>& types) {
    if (b.started())
      b.quantize(name, types);
    else
      b.input(shape, types);
  };
  const std::vector<nn::Layer*> layers = m.layers();
  // Open residual blocks, innermost last: the index of the first layer after the body, the block's name,
  // and the types of the body output's quantizer (empty: the add takes it as it is).
  struct Block {
    size_t end;
    std::string name;
    std::vector<FixedType> output_types;
  };
  std::vector<Block> open;
  auto close_blocks = [&](size_t li) {
    for (; !open.empty() && open.back().end <= li; open.pop_back()) {
      if (!open.back().output_types.empty())
        b.quantize(open.back().name + ".input2_q", open.back().output_types);
      b.add(open.back().name + ".add");
    }
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
      if (!b.started()) refuse("a residual block before the first quantized layer has no fixed-point input");
      std::vector<nn::Layer*> inside;
      l->collect(inside);  // the block itself, then its body
      Block blk{li + inside.size(), l->name(), {}};
      std::vector<FixedType> input_types;
      if (auto it = quant.find(l); it != quant.end()) {  // the add's input quantizers
        input_types = element_types(*it->second->input);
        blk.output_types = element_types(*it->second->input2);
      }
      b.keep(l->name() + ".input", input_types);
      open.push_back(std::move(blk));
      continue;
    }
    if (type == "batch_norm") {
      if (folded.count(l)) continue;  // its map is in the preceding layer's weights
      if (!quant.count(l)) refuse("a BatchNorm deploys folded into the Dense/Conv before it, or quantized");
    }
    if (type == "linear" || type == "activation" || nn::is_activation_type(type)) {
      if (!b.started()) {
        if (l->activation_name() == "linear") continue;
        refuse("an activation before the first quantized layer has no fixed-point input");
      }
      add_activation(b, *l, l->activation_name(), l->name(), refuse);
      continue;
    }
    if (const nn::Geometry* g = l->geometry(); g && !l->has_slot(nn::Slot::kWeight)) {
      auto it = quant.find(l);
      if (it != quant.end())
        quantize(l->name() + ".input_q", l->input_shape(), element_types(*it->second->input));
      if (!b.started()) refuse("a pooling layer before the first quantized layer has no fixed-point input");
      const Shape out = pool_output_shape(*l);
      if (g->max) {
        b.max_pool(l->name(), l->input_shape(), out, *g);
        continue;
      }
      if (it == quant.end()) refuse("an average pooling layer deploys only with its input quantized");
      // The sum of a window must stay exact in the float average training computes (avg_pool.h).
      const int out_frac = finest_frac(*it->second->input);
      int64_t top = 0, most = 0;
      for (const FixedType& t : element_types(*it->second->input))
        if (t.k + t.i + t.f > 0) top = std::max(top, int64_t{1} << std::min(40, std::max(0, t.i + out_frac)));
      for (int64_t c : window_counts(l->input_shape(), out, *g)) most = std::max(most, c);
      if (top * most >= (int64_t{1} << 21))
        refuse("a window sum reaches 2^" + std::to_string(ceil_log2(static_cast<double>(top * most))) +
               " on the grid 2^-" + std::to_string(out_frac) +
               "; average pooling deploys up to 2^21 (fewer input bits)");
      b.avg_pool(l->name(), l->input_shape(), out, *g);
      continue;
    }
    if (type == "layer_norm" || type == "positional_embedding") {
      auto it = quant.find(l);
      if (it == quant.end()) refuse("the layer is not quantized (enable quantization for it)");
      const LayerQuant& lq = *it->second;
      quantize(l->name() + ".input_q", l->input_shape(), element_types(*lq.input));
      MacParams s;
      quantize_param(*lq.weight, l->param(type == "layer_norm" ? "gamma" : "table")->var.value(), &s.w_code,
                     &s.w_frac, &s.w_types);
      if (type == "positional_embedding") {
        b.add_const(l->name(), s.w_code, s.w_frac);
        continue;
      }
      std::vector<FixedType> b_types;
      quantize_param(*lq.bias, l->param("beta")->var.value(), &s.b_code, &s.b_frac, &b_types);
      b.layer_norm(l->name(), s);
      continue;
    }
    if (type == "vae_sampling") {  // at inference z = mu: the first half of its input, as it is
      if (!b.started())
        refuse("a VAE sampling layer before the first quantized layer has no fixed-point input");
      b.slice(l->name(), l->output_shape());
      continue;
    }
    if (type == "sum_squares") {
      auto it = quant.find(l);
      if (it == quant.end()) refuse("a sum of squares deploys only with its input quantized");
      quantize(l->name() + ".input_q", l->input_shape(), element_types(*it->second->input));
      b.sum_squares(l->name());
      // Exact in the float forward too while the sum fits float32's 24-bit mantissa (the check's bound).
      d.max_acc_bits_ = std::max(d.max_acc_bits_, signed_bits(0, b.current().max()));
      continue;
    }
    if (type == "attention") {
      auto it = quant.find(l);
      if (it == quant.end()) refuse("an attention layer deploys only with its input (Q, K, V) quantized");
      const auto* sm = dynamic_cast<const LutActivation*>(l->transform(nn::Slot::kActivation));
      if (!sm) refuse("an attention layer deploys only with its softmax through a table (HGQ attaches it)");
      quantize(l->name() + ".input_q", l->input_shape(), element_types(*it->second->input));
      b.attention(l->name(), l->heads(), sm->softmax_table());
      continue;
    }
    if (type == "upsample1d" || type == "upsample2d")
      refuse("upsampling is not supported by the deployed fixed-point model (it trains float teachers only)");
    if (!l->has_slot(nn::Slot::kWeight)) refuse("not supported by the deployed fixed-point model");
    auto it = quant.find(l);
    if (it == quant.end()) refuse("the layer is not quantized (enable quantization for it)");
    const LayerQuant& lq = *it->second;
    // 1. The input quantizer.
    const std::vector<FixedType> in_types = element_types(*lq.input);
    quantize(l->name() + ".input_q", l->input_shape(), in_types);
    int fx = -1000, ix = -1000;
    for (const auto& t : in_types) fx = std::max(fx, t.f), ix = std::max(ix, t.i);
    // 2. The multiply-accumulate.
    MacParams s;
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
    std::vector<FixedType> b_types;
    quantize_param(*lq.weight, wv, &s.w_code, &s.w_frac, &s.w_types);
    int fw = -1000, iw = -1000;
    for (const auto& t : s.w_types) fw = std::max(fw, t.f), iw = std::max(iw, t.i);
    int fb = -1000, ib = -1000;
    if (lq.bias) {
      const Tensor bv = norm ? shift.value() : l->param("bias")->var.value();
      quantize_param(*lq.bias, lq.fold_bias ? lq.fold_bias->fold_value(bv) : bv, &s.b_code, &s.b_frac,
                     &b_types);
      for (const auto& t : b_types) fb = std::max(fb, t.f), ib = std::max(ib, t.i);
    }
    // Accumulator bound: terms per output * 2^(ix + iw) (+ 2^ib), on a grid of 2^-F, plus a sign bit.
    const int out_frac = std::max(fx + fw, fb);
    int64_t terms = shape_numel(lq.weight->shape()) / std::max<int64_t>(1, s.out_shape.back());
    if (!s.dense && s.geom.depthwise) terms = shape_numel(lq.weight->shape()) / s.out_shape.back();
    int acc_int = std::max(ceil_log2(static_cast<double>(terms)) + ix + iw + 2, ib + 1);
    int acc_bits = acc_int + out_frac + 1;
    if (acc_bits > 62)
      refuse("accumulator needs " + std::to_string(acc_bits) + " bits, more than int64 holds");
    d.max_acc_bits_ = std::max(d.max_acc_bits_, acc_bits);
    b.mac(l->name(), s);
    const std::string act = l->activation_name();
    add_activation(b, *l, act, l->name() + "." + act, refuse);
  }
  close_blocks(layers.size());
  if (!b.started()) throw InputError("the model has no quantized layer to deploy");
  d.program_ = b.finish();
  d.out_size_ = shape_numel(m.output_shape());
  KILN_CHECK(d.program_.out().size == d.out_size_, "deployed program computes " +
                                                       std::to_string(d.program_.out().size) +
                                                       " outputs, the model " + std::to_string(d.out_size_));
  return d;
}

std::vector<double> DeployedModel::forward(const Tensor& x, int64_t batch) const {
  KILN_CHECK(batch >= 1, "deployed model: batch " + std::to_string(batch));
  const int64_t n = x.dim(0);
  if (x.size() != n * in_size_)
    throw ShapeError("deployed model: input " + shape_str(x.shape()) + " has " +
                     std::to_string(x.size() / std::max<int64_t>(n, 1)) +
                     " values per sample, the model takes " + std::to_string(in_size_));
  std::vector<double> out(static_cast<size_t>(n * out_size_));
  const int frac = program_.out().frac;
  // Samples are independent: chunks of them, one thread each (the input types prepared once per chunk), run
  // `batch` at a time through the program (its products as matrix products over the batch, its quantize ops'
  // constants loaded once per batch), in one workspace per thread.
  constexpr int64_t kChunk = 64;
#pragma omp parallel
  {
    Codes workspace;  // one per thread, its buffers kept from chunk to chunk
#pragma omp for schedule(dynamic, 1)
    for (int64_t r0 = 0; r0 < n; r0 += kChunk) {
      const int64_t rows = std::min(kChunk, n - r0);
      const std::vector<int64_t> codes = quantize_input(program_, x.data() + r0 * in_size_, rows);
      for (int64_t b0 = 0; b0 < rows; b0 += batch) {
        const int64_t m = std::min(batch, rows - b0);
        const std::vector<int64_t>& y = run(program_, codes.data() + b0 * in_size_, m, workspace);
        for (int64_t j = 0; j < m * out_size_; ++j)
          out[static_cast<size_t>((r0 + b0) * out_size_ + j)] =
              std::ldexp(static_cast<double>(y[static_cast<size_t>(j)]), -frac);
      }
    }
  }
  return out;
}

std::string DeployedModel::describe() const {
  std::ostringstream os;
  for (const Op& op : program_.ops) {
    os << op.name << ": " << op_kind_name(op.kind);
    if (op.kind == Op::kDense || op.kind == Op::kConv || op.kind == Op::kDepthwise)
      os << ", accumulator on 2^-" << program_.buffers[static_cast<size_t>(op.out)].frac;
    os << '\n';
  }
  os << "widest accumulator: " << max_acc_bits_ << " bits\n";
  return os.str();
}

}  // namespace kiln::compress
