// Conv1D, Conv2D and DepthwiseConv2D layers (channels-last; kernels in Keras order).
#include "engine/nn/activation.h"
#include "engine/nn/factories.h"
#include "engine/ops.h"

namespace kiln::nn {

namespace {

// kernel_size / strides / pool_size: an integer or a list of `n` integers.
std::vector<int> read_sizes(const Config& c, const std::string& key, size_t n, std::vector<int> fallback) {
  if (!c.has(key)) return fallback;
  YAML::Node v = c.raw(key);
  std::vector<int> out;
  if (v.IsScalar()) {
    out.assign(n, c.get<int>(key, 0));
  } else {
    out = c.get<std::vector<int>>(key, {});
  }
  if (out.size() != n)
    c.fail(key, key + " must be an integer or a list of " + std::to_string(n) + " integers");
  for (int s : out)
    if (s < 1) c.fail(key, key + " must be >= 1, got " + std::to_string(s));
  return out;
}

Padding read_padding(const Config& c) {
  std::string p = c.get<std::string>("padding", "valid");
  if (p == "valid") return Padding::kValid;
  if (p == "same") return Padding::kSame;
  c.fail("padding", "padding must be 'valid' or 'same', got '" + p + "'");
}

const std::vector<std::string> kConvKeys{
    "type",    "name",     "filters",    "kernel_size",        "strides",
    "padding", "use_bias", "activation", "kernel_initializer", "bias_initializer",
    "alpha"};

// dims = 1 (Conv1D, input [L, C]) or 2 (Conv2D, input [H, W, C]); depthwise: 2-d, one filter per channel.
class Conv : public Layer {
 public:
  Conv(const Config& c, int dims, bool depthwise)
      : dims_(dims),
        depthwise_(depthwise),
        filters_(depthwise ? 0 : c.require<int>("filters")),
        kernel_(read_sizes(c, "kernel_size", static_cast<size_t>(dims), {})),
        strides_(read_sizes(c, "strides", static_cast<size_t>(dims),
                            std::vector<int>(static_cast<size_t>(dims), 1))),
        pad_(read_padding(c)),
        use_bias_(c.get<bool>("use_bias", true)),
        act_(parse_activation(c, "activation")),
        kinit_(parse_init(c, "kernel_initializer", Init::kGlorotUniform)),
        binit_(parse_init(c, "bias_initializer", Init::kZeros)) {
    if (!c.has("kernel_size")) c.fail("kernel_size", "missing required key 'kernel_size' in " + c.where());
    geom_ = {dims_, kernel_, strides_, pad_, depthwise_, false};
    if (!depthwise && filters_ < 1)
      c.fail("filters", "filters must be >= 1, got " + std::to_string(filters_));
  }
  std::string type() const override {
    return depthwise_ ? "depthwise_conv2d" : (dims_ == 1 ? "conv1d" : "conv2d");
  }

  Shape build(const Shape& in, std::mt19937_64& rng) override {
    if (static_cast<int>(in.size()) != dims_ + 1)
      shape_error(in,
                  "needs " + std::string(dims_ == 1 ? "[length, channels]" : "[height, width, channels]"));
    int64_t ch = in.back(), taps = 1;
    Shape kshape;
    for (int d = 0; d < dims_; ++d)
      kshape.push_back(kernel_[static_cast<size_t>(d)]), taps *= kernel_[static_cast<size_t>(d)];
    int64_t out_ch = depthwise_ ? ch : filters_;
    out_shape_.clear();
    for (int d = 0; d < dims_; ++d) {
      int64_t o = conv_out_size(in[static_cast<size_t>(d)], kernel_[static_cast<size_t>(d)],
                                strides_[static_cast<size_t>(d)], pad_);
      if (o < 1) shape_error(in, "is smaller than the kernel " + shape_str(kshape) + " with valid padding");
      out_shape_.push_back(o);
    }
    out_shape_.push_back(out_ch);
    kshape.push_back(ch);
    if (!depthwise_) kshape.push_back(filters_);
    // Keras fans: fan_in = taps * in_channels, fan_out = taps * out_channels (depthwise: one each).
    int64_t fan_in = depthwise_ ? taps : taps * ch, fan_out = depthwise_ ? taps : taps * filters_;
    add_param("weight", init_tensor(kshape, kinit_, fan_in, fan_out, rng), true);
    if (use_bias_) add_param("bias", init_tensor({out_ch}, binit_, fan_in, fan_out, rng), false);
    return out_shape_;
  }

  bool has_slot(Slot) const override { return true; }
  std::string activation_name() const override { return act_.name; }
  const Geometry* geometry() const override { return &geom_; }
  Var apply_kernel(const Var& x, const Var& w) const override {
    if (depthwise_) return depthwise_conv2d(x, w, Var(), strides_[0], strides_[1], pad_);
    if (dims_ == 1) return conv1d(x, w, Var(), strides_[0], pad_);
    return conv2d(x, w, Var(), strides_[0], strides_[1], pad_);
  }
  Var forward(const Var& in, Context& ctx) override {
    Var b = use_bias_ ? through(Slot::kBias, params_[1].var, ctx) : Var();
    Var w = through(Slot::kWeight, params_[0].var, ctx);
    Var x = through(Slot::kInput, in, ctx);
    // A relu with nothing between it and the convolution (no activation quantizer) runs inside the op.
    const bool fuse = !depthwise_ && act_.name == "relu" && !transform(Slot::kActivation);
    Var y;
    if (depthwise_)
      y = depthwise_conv2d(x, w, b, strides_[0], strides_[1], pad_);
    else if (dims_ == 1)
      y = conv1d(x, w, b, strides_[0], pad_, fuse);
    else
      y = conv2d(x, w, b, strides_[0], strides_[1], pad_, fuse);
    return fuse ? through(Slot::kOutput, y, ctx) : activate(act_, y, ctx);
  }

 private:
  int dims_;
  bool depthwise_;
  int64_t filters_;
  std::vector<int> kernel_, strides_;
  Padding pad_;
  bool use_bias_;
  Activation act_;
  Init kinit_, binit_;
  Geometry geom_;
};

// Pooling: max/avg, 1-d or 2-d; strides default to the pool size (Keras).
class Pool : public Layer {
 public:
  Pool(const Config& c, bool is_max, int dims)
      : is_max_(is_max),
        dims_(dims),
        pool_(read_sizes(c, "pool_size", static_cast<size_t>(dims),
                         std::vector<int>(static_cast<size_t>(dims), 2))),
        strides_(read_sizes(c, "strides", static_cast<size_t>(dims), pool_)),
        pad_(read_padding(c)) {
    geom_ = {dims_, pool_, strides_, pad_, false, is_max_};
  }
  std::string type() const override {
    return std::string(is_max_ ? "max" : "avg") + "_pool" + std::to_string(dims_) + "d";
  }
  const Geometry* geometry() const override { return &geom_; }
  // The output slot carries the rounding of a quantized average (compress/avg_pool.h).
  bool has_slot(Slot s) const override { return s == Slot::kInput || s == Slot::kOutput; }
  Shape build(const Shape& in, std::mt19937_64&) override {
    if (static_cast<int>(in.size()) != dims_ + 1)
      shape_error(in,
                  "needs " + std::string(dims_ == 1 ? "[length, channels]" : "[height, width, channels]"));
    out_shape_.clear();
    for (int d = 0; d < dims_; ++d) {
      int64_t o = conv_out_size(in[static_cast<size_t>(d)], pool_[static_cast<size_t>(d)],
                                strides_[static_cast<size_t>(d)], pad_);
      if (o < 1) shape_error(in, "is smaller than the pool window");
      out_shape_.push_back(o);
    }
    out_shape_.push_back(in.back());
    return out_shape_;
  }
  Var forward(const Var& in, Context& ctx) override {
    if (Transform* t = transform(Slot::kInput); t && is_max_ && dims_ == 2) {
      Var y = t->apply_max_pool2d(in, ctx, {pool_[0], pool_[1], strides_[0], strides_[1], pad_});
      if (y.defined()) return through(Slot::kOutput, y, ctx);
    }
    Var x = through(Slot::kInput, in, ctx);
    if (dims_ == 1)
      return through(
          Slot::kOutput,
          is_max_ ? max_pool1d(x, pool_[0], strides_[0], pad_) : avg_pool1d(x, pool_[0], strides_[0], pad_),
          ctx);
    return through(Slot::kOutput,
                   is_max_ ? max_pool2d(x, pool_[0], pool_[1], strides_[0], strides_[1], pad_)
                           : avg_pool2d(x, pool_[0], pool_[1], strides_[0], strides_[1], pad_),
                   ctx);
  }

 private:
  bool is_max_;
  int dims_;
  std::vector<int> pool_, strides_;
  Padding pad_;
  Geometry geom_;
};

}  // namespace

LayerPtr make_conv1d(const Config& c) {
  c.check_unused(kConvKeys);
  return std::make_unique<Conv>(c, 1, false);
}
LayerPtr make_conv2d(const Config& c) {
  c.check_unused(kConvKeys);
  return std::make_unique<Conv>(c, 2, false);
}
LayerPtr make_depthwise_conv2d(const Config& c) {
  c.check_unused({"type", "name", "kernel_size", "strides", "padding", "use_bias", "activation",
                  "kernel_initializer", "bias_initializer", "alpha"});
  return std::make_unique<Conv>(c, 2, true);
}
LayerPtr make_pool(const Config& c) {
  c.check_unused({"type", "name", "pool_size", "strides", "padding"});
  std::string t = c.require<std::string>("type");
  return std::make_unique<Pool>(c, t.rfind("max", 0) == 0, t.back() == 'd' && t[t.size() - 2] == '1' ? 1 : 2);
}

}  // namespace kiln::nn
