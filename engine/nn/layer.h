// Layers: named parameters, a forward pass, and a per-sample output shape computed when the model is built.
// Shapes here are per sample (no batch axis); forward() sees [B, ...].
//
// Parameters are leaf Vars owned by their layer and reached by name ("fc1.weight"). Compression will
// attach a mask or a quantizer to a Parameter; optimisers and checkpoints walk the same list.
#pragma once
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/config.h"

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
  bool training = false;
  std::mt19937_64* rng = nullptr;  // dropout; required when training
};

enum class Init { kGlorotUniform, kGlorotNormal, kHeUniform, kHeNormal, kZeros, kOnes };
Init parse_init(const Config& c, const std::string& key, Init fallback);
Tensor init_tensor(const Shape& shape, Init init, int64_t fan_in, int64_t fan_out, std::mt19937_64& rng);

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
  virtual Var forward(const Var& x, Context& ctx) = 0;

  virtual void parameters(std::vector<Parameter*>& out) {
    for (auto& p : params_) out.push_back(&p);
  }
  virtual void buffers(std::vector<Buffer>&) {}
  virtual void summary(std::vector<SummaryRow>& rows) const;
  Shape output_shape() const { return out_shape_; }

 protected:
  Parameter& add_param(const std::string& short_name, Tensor value, bool decay);
  [[noreturn]] void shape_error(const Shape& in, const std::string& why) const;
  std::string name_;
  Shape out_shape_;
  std::vector<Parameter> params_;
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
