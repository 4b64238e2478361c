// Layers: named parameters, a forward pass, and a per-sample output shape computed when the model is built.
// Shapes here are per sample (no batch axis); forward() sees [B, ...].
//
// Parameters are leaf Vars owned by their layer and reached by name ("fc1.weight"). Compression will
// attach a mask or a quantizer to a Parameter; optimisers and checkpoints walk the same list.
#pragma once
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/config.h"
#include "engine/nn/activation.h"
#include "engine/ops.h"

namespace kiln::nn {

struct Parameter {
  std::string name;   // "<layer>.<param>", e.g. "fc1.weight"
  Var var;            // leaf, requires_grad
  bool decay = true;  // weight decay applies (kernels); false for biases and norm parameters
  Tensor mask;        // empty = dense; otherwise 0/1 of var's shape, applied after every update (pruning)
};

// Non-trainable state saved with the model (BatchNorm running statistics).
struct Buffer {
  std::string name;
  Tensor* tensor;
};

struct Context {
  Context(bool train = false, std::mt19937_64* r = nullptr, std::vector<Var>* aux = nullptr)
      : training(train), rng(r), aux_losses(aux) {}
  bool training = false;
  std::mt19937_64* rng = nullptr;  // dropout, VAE sampling; required when training
  // Loss terms a layer adds while training (the VAE's KL divergence); the trainer adds them to the loss.
  // Null: layers add none (evaluation).
  std::vector<Var>* aux_losses = nullptr;
  // Layers whose outputs the caller wants (feature distillation, the latent of an anomaly score): the
  // output of every layer named in `capture` (residual bodies included) is stored in `captured`.
  const std::set<std::string>* capture = nullptr;
  std::map<std::string, Var> captured;
};

enum class Init { kGlorotUniform, kGlorotNormal, kHeUniform, kHeNormal, kZeros, kOnes };
Init parse_init(const Config& c, const std::string& key, Init fallback);
Tensor init_tensor(const Shape& shape, Init init, int64_t fan_in, int64_t fan_out, std::mt19937_64& rng);

// A differentiable map on one of a layer's tensors: its input, weight, bias or output. Compression
// attaches them after the model is built (quantizers with trainable bit widths, pruning masks); their
// parameters and buffers become the layer's, named "<layer>.<slot>_q.<name>".
// kActivation replaces the layer's activation function (e.g. by hls4ml's lookup tables); it receives
// the pre-activation values. kInput2 is the second input of a two-input layer (a residual block: kInput
// is the block's input as it reaches the add, kInput2 the body's output).
enum class Slot { kInput = 0, kWeight = 1, kBias = 2, kOutput = 3, kActivation = 4, kInput2 = 5 };
constexpr int kNumSlots = 6;
const char* slot_name(Slot s);  // "input", "weight", "bias", "output", "activation", "input2"

class Transform {
 public:
  virtual ~Transform() = default;
  virtual Var apply(const Var& x, Context& ctx) = 0;
  // max_pool2d over apply(x) in one op, where the transform has such a fused op (HGQ's quantizer on a pool's
  // input, compress/quantize_pool.h); an undefined Var where it has none, before doing anything, and the
  // layer then composes apply and the pool.
  virtual Var apply_max_pool2d(const Var&, Context&, const PoolWindow2d&) { return Var(); }
  virtual void parameters(std::vector<Parameter*>&) {}
  virtual void buffers(std::vector<Buffer>&) {}
};
using TransformPtr = std::shared_ptr<Transform>;

// Window geometry of convolution and pooling layers (for deployment and code generation).
struct Geometry {
  int dims = 2;             // spatial axes: 1 ([L, C]) or 2 ([H, W, C])
  std::vector<int> window;  // kernel or pool size per spatial axis
  std::vector<int> strides;
  Padding padding = Padding::kValid;
  bool depthwise = false;  // convolutions
  bool max = true;         // pooling: max or average
};

struct SummaryRow {
  std::string name, type;
  Shape output;
  int64_t params;
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string type() const = 0;
  const std::string& name() const { return name_; }
  // Called once, before build(); composite layers prefix their parts' names.
  virtual void set_name(std::string n) { name_ = std::move(n); }

  // Creates parameters for a per-sample input shape and returns the per-sample output shape. Throws
  // ShapeError naming the layer and both shapes when the input does not fit.
  virtual Shape build(const Shape& in, std::mt19937_64& rng) = 0;
  Shape setup(const Shape& in, std::mt19937_64& rng) {  // records the input shape, then build()
    in_shape_ = in;
    return build(in, rng);
  }
  virtual Var forward(const Var& x, Context& ctx) = 0;

  virtual void parameters(std::vector<Parameter*>& out);
  virtual void buffers(std::vector<Buffer>& out);
  virtual void summary(std::vector<SummaryRow>& rows) const;
  Shape output_shape() const { return out_shape_; }
  Shape input_shape() const { return in_shape_; }

  // Slots this layer routes through transforms (Dense/Conv: input, weight, bias, output, activation;
  // pooling: input, output; BatchNorm, unless folded: input, weight (its scale), bias (its shift);
  // Residual: input, input2; others: none).
  virtual bool has_slot(Slot) const { return false; }
  // The activation this layer applies ("relu", "sigmoid", ..., "linear"), "" for layers without one.
  virtual std::string activation_name() const { return ""; }
  virtual const Geometry* geometry() const { return nullptr; }  // conv and pooling layers
  virtual int64_t heads() const { return 0; }                   // attention layers: the number of heads
  virtual float epsilon() const { return 0; }                   // normalisation layers
  // Normalisation layers (BatchNorm): the inference map y = x * scale + shift per channel, differentiable in
  // the layer's own parameters (statistics are constants). False for other layers.
  virtual bool inference_affine(Var* /*scale*/, Var* /*shift*/) const { return false; }
  // A folded layer is the identity: its map now lives in the preceding layer's weights.
  virtual void set_folded(bool) {}
  // The layer's multiply structure alone: x [B, in...] with kernel w (Dense: linear, Conv: the convolution),
  // no bias, no activation. Used to count bit operations (EBOPs) and to fold and deploy. Null Var if none.
  virtual Var apply_kernel(const Var& /*x*/, const Var& /*w*/) const { return Var(); }
  // This layer and, for composite layers, every layer inside, in forward order.
  virtual void collect(std::vector<Layer*>& out) { out.push_back(this); }
  void set_transform(Slot s, TransformPtr t) { transforms_[static_cast<int>(s)] = std::move(t); }
  Transform* transform(Slot s) const { return transforms_[static_cast<int>(s)].get(); }
  TransformPtr transform_ptr(Slot s) const { return transforms_[static_cast<int>(s)]; }  // to wrap it
  // The layer's own parameter (not a transform's) by short name ("weight", "bias", "gamma"), or null.
  Parameter* param(const std::string& short_name);

 protected:
  Parameter& add_param(const std::string& short_name, Tensor value, bool decay);
  [[noreturn]] void shape_error(const Shape& in, const std::string& why) const;
  // x through the transform in slot s, or x itself when there is none.
  Var through(Slot s, const Var& x, Context& ctx) const;
  // The activation a of pre-activation values y (or the transform that replaces it), then the output slot.
  Var activate(const Activation& a, const Var& y, Context& ctx) const;
  std::string name_;
  Shape in_shape_, out_shape_;
  std::vector<Parameter> params_;
  TransformPtr transforms_[kNumSlots];
};

using LayerPtr = std::unique_ptr<Layer>;

// The one registry: YAML `type:` -> layer. Reads the layer's keys from `c` and rejects unknown ones.
LayerPtr make_layer(const Config& c);
std::vector<std::string> layer_types();

// Applies layers in order (the model body, and the inside of residual blocks).
class Sequential {
 public:
  void add(LayerPtr l) { layers_.push_back(std::move(l)); }
  Shape build(const Shape& in, std::mt19937_64& rng);
  Var forward(Var x, Context& ctx);
  void parameters(std::vector<Parameter*>& out);
  void buffers(std::vector<Buffer>& out);
  void summary(std::vector<SummaryRow>& rows) const;
  const std::vector<LayerPtr>& layers() const { return layers_; }

 private:
  std::vector<LayerPtr> layers_;
};
// Builds a Sequential from a list of layer mappings, naming unnamed layers "<type>_<n>".
Sequential make_sequential(const std::vector<Config>& items, const std::string& prefix);

}  // namespace kiln::nn
