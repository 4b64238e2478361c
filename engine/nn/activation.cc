// Activation layers (relu, leaky_relu, sigmoid, tanh, gelu, softmax, or `activation` with a name).
#include "engine/nn/activation.h"

#include "engine/nn/factories.h"
#include "engine/ops.h"

namespace kiln::nn {

namespace {
const std::vector<std::string> kNames{"linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax"};
}

bool is_activation_type(const std::string& type) {
  return std::find(kNames.begin(), kNames.end(), type) != kNames.end() && type != "linear";
}

Var Activation::apply(const Var& x) const {
  if (name == "linear") return x;
  if (name == "relu") return relu(x);
  if (name == "leaky_relu") return leaky_relu(x, alpha);
  if (name == "sigmoid") return sigmoid(x);
  if (name == "tanh") return tanh(x);
  if (name == "gelu") return gelu(x);
  if (name == "softmax") return softmax(x, -1);
  throw InternalError("unknown activation " + name);
}

Activation parse_activation(const Config& c, const std::string& key) {
  Activation a;
  a.name = c.get<std::string>(key, "linear");
  if (std::find(kNames.begin(), kNames.end(), a.name) == kNames.end()) {
    c.fail(key, "unknown activation '" + a.name + "' (valid: " + join(kNames) + ")");
  }
  a.alpha = c.get<float>("alpha", 0.3f);
  return a;
}

namespace {

class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(Activation a) : act_(std::move(a)) {}
  std::string type() const override { return act_.name; }
  bool has_slot(Slot s) const override { return s == Slot::kActivation; }
  std::string activation_name() const override { return act_.name; }
  Shape build(const Shape& in, std::mt19937_64&) override { return out_shape_ = in; }
  Var forward(const Var& x, Context& ctx) override { return activate(act_, x, ctx); }

 private:
  Activation act_;
};

}  // namespace

// `type: relu` (or any activation name), or `type: activation, activation: relu`.
LayerPtr make_activation(const Config& c) {
  std::string type = c.require<std::string>("type");
  Activation a;
  if (type == "activation") {
    a = parse_activation(c, "activation");
    c.check_unused({"type", "name", "activation", "alpha"});
  } else {
    a.name = type;
    a.alpha = c.get<float>("alpha", 0.3f);
    c.check_unused(type == "leaky_relu" ? std::vector<std::string>{"type", "name", "alpha"}
                                        : std::vector<std::string>{"type", "name"});
  }
  return std::make_unique<ActivationLayer>(a);
}

}  // namespace kiln::nn
