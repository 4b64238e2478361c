// Dense: y = x W + b on the last axis, W [in, out] (Keras and hls4ml order), optional activation.
#include "engine/nn/activation.h"
#include "engine/nn/factories.h"
#include "engine/ops.h"

namespace kiln::nn {

namespace {

class Dense : public Layer {
 public:
  explicit Dense(const Config& c)
      : units_(c.require<int>("units")),
        use_bias_(c.get<bool>("use_bias", true)),
        act_(parse_activation(c, "activation")),
        kinit_(parse_init(c, "kernel_initializer", Init::kGlorotUniform)),
        binit_(parse_init(c, "bias_initializer", Init::kZeros)) {
    if (units_ < 1) c.fail("units", "units must be >= 1, got " + std::to_string(units_));
  }
  std::string type() const override { return "dense"; }
  Shape build(const Shape& in, std::mt19937_64& rng) override {
    if (in.empty()) shape_error(in, "has no feature axis");
    int64_t k = in.back();
    add_param("weight", init_tensor({k, units_}, kinit_, k, units_, rng), true);
    if (use_bias_) add_param("bias", init_tensor({units_}, binit_, k, units_, rng), false);
    out_shape_ = in;
    out_shape_.back() = units_;
    return out_shape_;
  }
  bool has_slot(Slot) const override { return true; }
  std::string activation_name() const override { return act_.name; }
  Var apply_kernel(const Var& x, const Var& w) const override { return linear(x, w, Var()); }
  Var forward(const Var& x, Context& ctx) override {
    Var b = use_bias_ ? through(Slot::kBias, params_[1].var, ctx) : Var();
    Var y = linear(through(Slot::kInput, x, ctx), through(Slot::kWeight, params_[0].var, ctx), b);
    return activate(act_, y, ctx);
  }

 private:
  int64_t units_;
  bool use_bias_;
  Activation act_;
  Init kinit_, binit_;
};

}  // namespace

LayerPtr make_dense(const Config& c) {
  c.check_unused(
      {"type", "name", "units", "use_bias", "activation", "kernel_initializer", "bias_initializer"});
  return std::make_unique<Dense>(c);
}

}  // namespace kiln::nn
