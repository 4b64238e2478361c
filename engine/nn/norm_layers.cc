// BatchNorm (over every axis but the channels) and LayerNorm (over the last axis).
#include <cmath>

#include "engine/nn/factories.h"
#include "engine/ops.h"

namespace kiln::nn {

namespace {

class BatchNorm : public Layer {
 public:
  explicit BatchNorm(const Config& c)
      : momentum_(c.get<float>("momentum", 0.99f)), eps_(c.get<float>("epsilon", 1e-3f)) {
    if (!(momentum_ >= 0.f && momentum_ < 1.f))
      c.fail("momentum", "momentum must be in [0, 1), got " + std::to_string(momentum_));
    if (!(eps_ > 0.f)) c.fail("epsilon", "epsilon must be > 0");
  }
  std::string type() const override { return "batch_norm"; }
  Shape build(const Shape& in, std::mt19937_64&) override {
    if (in.empty()) shape_error(in, "has no channel axis");
    int64_t ch = in.back();
    add_param("gamma", Tensor({ch}, 1.f), false);
    add_param("beta", Tensor({ch}, 0.f), false);
    mean_ = Tensor({ch}, 0.f);
    var_ = Tensor({ch}, 1.f);
    return out_shape_ = in;
  }
  bool inference_affine(Var* scale, Var* shift) const override {
    int64_t c = mean_.size();
    Tensor rstd({c});
    for (int64_t j = 0; j < c; ++j) rstd[j] = 1.f / std::sqrt(var_[j] + eps_);
    *scale = mul(params_[0].var, Var(rstd));
    *shift = sub(params_[1].var, mul(Var(mean_), *scale));
    return true;
  }
  void set_folded(bool f) override { folded_ = f; }
  // Quantized (unfolded) BatchNorm: y = q_in(x) * q_w(scale) + q_b(shift), the per-channel map the
  // hardware applies, with scale and shift from the running statistics.
  bool has_slot(Slot s) const override {
    return !folded_ && (s == Slot::kInput || s == Slot::kWeight || s == Slot::kBias);
  }
  Var apply_kernel(const Var& x, const Var& w) const override {
    return mul(x, w);
  }  // x [B, ..., C] * scale [C]
  Var forward(const Var& x, Context& ctx) override {
    if (folded_) return x;
    if (transform(Slot::kWeight)) {
      Var xq = through(Slot::kInput, x, ctx);
      if (ctx.training) {  // the running statistics still follow the data; the map uses them, as inference
                           // does
        NoGradGuard ng;
        batch_norm_train(Var(xq.value()), params_[0].var, params_[1].var, mean_, var_, momentum_, eps_);
      }
      Var scale, shift;
      inference_affine(&scale, &shift);
      return add(mul(xq, through(Slot::kWeight, scale, ctx)), through(Slot::kBias, shift, ctx));
    }
    if (ctx.training)
      return batch_norm_train(x, params_[0].var, params_[1].var, mean_, var_, momentum_, eps_);
    return batch_norm_infer(x, params_[0].var, params_[1].var, mean_, var_, eps_);
  }
  void buffers(std::vector<Buffer>& out) override {
    out.push_back({name_ + ".running_mean", &mean_});
    out.push_back({name_ + ".running_var", &var_});
    Layer::buffers(out);  // the quantizers' state
  }

 private:
  float momentum_, eps_;
  Tensor mean_, var_;
  bool folded_ = false;
};

class LayerNorm : public Layer {
 public:
  explicit LayerNorm(const Config& c) : eps_(c.get<float>("epsilon", 1e-5f)) {
    if (!(eps_ > 0.f)) c.fail("epsilon", "epsilon must be > 0");
  }
  std::string type() const override { return "layer_norm"; }
  float epsilon() const override { return eps_; }
  // Quantized (HGQ): input, weight (gamma), bias (beta), and activation: the normalisation as the hardware
  // computes it, then y = x^ gamma + beta.
  bool has_slot(Slot s) const override {
    return s == Slot::kInput || s == Slot::kWeight || s == Slot::kBias || s == Slot::kActivation;
  }
  Shape build(const Shape& in, std::mt19937_64&) override {
    if (in.empty()) shape_error(in, "has no feature axis");
    add_param("gamma", Tensor({in.back()}, 1.f), false);
    add_param("beta", Tensor({in.back()}, 0.f), false);
    return out_shape_ = in;
  }
  Var forward(const Var& in, Context& ctx) override {
    if (!transform(Slot::kActivation)) return layer_norm(in, params_[0].var, params_[1].var, eps_);
    const Var xhat = through(Slot::kActivation, through(Slot::kInput, in, ctx), ctx);
    return add(mul(xhat, through(Slot::kWeight, params_[0].var, ctx)),
               through(Slot::kBias, params_[1].var, ctx));
  }

 private:
  float eps_;
};

}  // namespace

LayerPtr make_batch_norm(const Config& c) {
  c.check_unused({"type", "name", "momentum", "epsilon"});
  return std::make_unique<BatchNorm>(c);
}
LayerPtr make_layer_norm(const Config& c) {
  c.check_unused({"type", "name", "epsilon"});
  return std::make_unique<LayerNorm>(c);
}

}  // namespace kiln::nn
