// Layers that move or route data: Flatten, Dropout, GlobalAveragePooling, Residual.
#include "engine/nn/factories.h"
#include "engine/ops.h"

namespace kiln::nn {

namespace {

class Flatten : public Layer {
 public:
  std::string type() const override { return "flatten"; }
  Shape build(const Shape& in, std::mt19937_64&) override { return out_shape_ = {shape_numel(in)}; }
  Var forward(const Var& x, Context&) override { return flatten(x); }
};

class Dropout : public Layer {
 public:
  explicit Dropout(const Config& c) : rate_(c.require<float>("rate")) {
    if (!(rate_ >= 0.f && rate_ < 1.f))
      c.fail("rate", "dropout rate must be in [0, 1), got " + std::to_string(rate_));
  }
  std::string type() const override { return "dropout"; }
  Shape build(const Shape& in, std::mt19937_64&) override { return out_shape_ = in; }
  Var forward(const Var& x, Context& ctx) override {
    if (!ctx.training || rate_ == 0.f) return x;
    KILN_CHECK(ctx.rng != nullptr, "dropout in training needs the context's rng");
    return dropout(x, rate_, *ctx.rng);
  }

 private:
  float rate_;
};

// Mean over every axis but the channels: [L, C] or [H, W, C] -> [C]. For deployment it is an average
// pooling whose one window covers the input (its geometry), with the same input and output slots.
class GlobalAvgPool : public Layer {
 public:
  std::string type() const override { return "global_avg_pool"; }
  Shape build(const Shape& in, std::mt19937_64&) override {
    if (in.size() < 2 || in.size() > 3)
      shape_error(in, "needs [length, channels] or [height, width, channels]");
    std::vector<int> window(in.begin(), in.end() - 1);
    geom_ = {static_cast<int>(window.size()), window, window, Padding::kValid, false, false};
    return out_shape_ = {in.back()};
  }
  const Geometry* geometry() const override { return &geom_; }
  bool has_slot(Slot s) const override { return s == Slot::kInput || s == Slot::kOutput; }
  Var forward(const Var& in, Context& ctx) override {
    Var x = through(Slot::kInput, in, ctx);
    int64_t b = x.dim(0), c = x.shape().back();
    return through(Slot::kOutput, mean(reshape(x, {b, -1, c}), 1), ctx);
  }

 private:
  Geometry geom_;
};

// y = x + body(x); the body must keep the shape.
class Residual : public Layer {
 public:
  explicit Residual(Sequential body) : body_(std::move(body)) {}
  std::string type() const override { return "residual"; }
  Shape build(const Shape& in, std::mt19937_64& rng) override {
    Shape s = body_.build(in, rng);
    if (s != in)
      shape_error(in, "becomes " + shape_str(s) + " in the residual body; a residual needs equal shapes");
    return out_shape_ = in;
  }
  // Quantized (HGQ): both inputs of the add pass their quantizers (kInput: the block's input, kInput2: the
  // body's output).
  bool has_slot(Slot s) const override { return s == Slot::kInput || s == Slot::kInput2; }
  Var forward(const Var& x, Context& ctx) override {
    return add(through(Slot::kInput, x, ctx), through(Slot::kInput2, body_.forward(x, ctx), ctx));
  }
  // Body layers are "<block>.<layer>"; renaming the block (a nested block named by its parent) replaces
  // the old prefix rather than adding a second one.
  void set_name(std::string n) override {
    const std::string old = name_.empty() ? "" : name_ + ".";
    for (const auto& l : body_.layers()) {
      std::string part = l->name();
      if (!old.empty() && part.rfind(old, 0) == 0) part = part.substr(old.size());
      l->set_name(n + "." + part);
    }
    name_ = std::move(n);
  }
  void parameters(std::vector<Parameter*>& out) override {
    body_.parameters(out);
    Layer::parameters(out);  // the add's quantizers
  }
  void collect(std::vector<Layer*>& out) override {
    out.push_back(this);
    for (const auto& l : body_.layers()) l->collect(out);
  }
  void buffers(std::vector<Buffer>& out) override {
    body_.buffers(out);
    Layer::buffers(out);
  }
  void summary(std::vector<SummaryRow>& rows) const override {
    rows.push_back({name_, type(), out_shape_, 0});
    body_.summary(rows);
  }

 private:
  Sequential body_;
};

}  // namespace

LayerPtr make_flatten(const Config& c) {
  c.check_unused({"type", "name"});
  return std::make_unique<Flatten>();
}
LayerPtr make_dropout(const Config& c) {
  c.check_unused({"type", "name", "rate"});
  return std::make_unique<Dropout>(c);
}
LayerPtr make_global_avg_pool(const Config& c) {
  c.check_unused({"type", "name"});
  return std::make_unique<GlobalAvgPool>();
}
LayerPtr make_residual(const Config& c) {
  c.check_unused({"type", "name", "layers"});
  std::vector<Config> items = c.children("layers");
  if (items.empty()) c.fail("layers", "a residual block needs a non-empty 'layers' list");
  return std::make_unique<Residual>(make_sequential(items, ""));
}

}  // namespace kiln::nn

namespace kiln::nn {

namespace {
// Reshape of the per-sample shape (the batch axis is kept); one entry may be -1.
class Reshape : public Layer {
 public:
  explicit Reshape(const Config& c) : target_(c.require<std::vector<int64_t>>("shape")) {}
  std::string type() const override { return "reshape"; }
  Shape build(const Shape& in, std::mt19937_64&) override {
    try {
      out_shape_ = resolve_shape(target_, shape_numel(in));
    } catch (const ShapeError&) {
      shape_error(in, "cannot be reshaped to " + shape_str(target_));
    }
    return out_shape_;
  }
  Var forward(const Var& x, Context&) override {
    Shape s{x.dim(0)};
    s.insert(s.end(), out_shape_.begin(), out_shape_.end());
    return reshape(x, s);
  }

 private:
  Shape target_;
};
}  // namespace

LayerPtr make_reshape(const Config& c) {
  c.check_unused({"type", "name", "shape"});
  return std::make_unique<Reshape>(c);
}

}  // namespace kiln::nn
