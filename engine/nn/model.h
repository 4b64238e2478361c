// A model: the layers of the YAML `model:` section, built for a per-sample input shape.
//
//   Config cfg = Config::load_file("data/jet.yaml");
//   auto model = Model::from_config(cfg.child("model"), {16}, /*seed=*/42);
//   Context ctx{/*training=*/true, &rng};
//   Var logits = model->forward(x, ctx);   // x [B, 16] -> [B, 5]
#pragma once
#include <memory>
#include <string>

#include "engine/nn/layer.h"

namespace kiln::nn {

class Model {
 public:
  // Reads `layers:` (and rejects unknown keys); parameters drawn from std::mt19937_64(seed).
  static std::unique_ptr<Model> from_config(const Config& model_cfg, const Shape& input_shape, uint64_t seed);
  // Same, from the YAML text saved in a checkpoint; `source` names it in messages (the checkpoint's path).
  static std::unique_ptr<Model> from_yaml(const std::string& yaml, const Shape& input_shape, uint64_t seed,
                                          const std::string& source = "checkpoint model spec");

  Var forward(const Var& x, Context& ctx);  // x [B, input_shape...]; throws ShapeError on a mismatch
  // Inference (no gradients, dropout off) over x [N, input_shape...] in batches: the outputs [N, out], or
  // those of the layer named `layer` (any layer, residual bodies included) when it is not empty.
  Tensor predict(const Tensor& x, const std::string& layer = "", int64_t batch_size = 1024);
  // Where non-finite values first appear for input x: "parameter 'fc1.weight'" (a parameter holding
  // nan/inf), "layer 'fc2' (dense)" (the first top-level layer whose output is not finite), or "" if the
  // forward pass is finite (the loss itself overflowed). For the message of a diverged training run.
  std::string nonfinite_origin(const Tensor& x, Context& ctx);
  std::vector<Parameter*> parameters();
  std::vector<Layer*> layers();  // every layer, residual bodies included, in forward order
  std::vector<Buffer> buffers();
  std::vector<SummaryRow> summary() const;
  std::string summary_text() const;  // Keras-style table
  int64_t num_params() const;

  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }
  const std::string& spec_yaml() const { return spec_yaml_; }
  // "file:line:col" of the last layer in the config (for messages about the model's output).
  const std::string& last_layer_location() const { return last_location_; }

 private:
  Sequential body_;
  Shape input_shape_, output_shape_;
  std::string spec_yaml_, last_location_;
};

}  // namespace kiln::nn
