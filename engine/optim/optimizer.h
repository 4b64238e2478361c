// Optimisers (SGD with momentum/Nesterov, Adam, AdamW), gradient clipping and learning-rate schedules.
// Update rules follow PyTorch's documentation, so a step can be checked against torch.optim by hand.
// Masked parameters (pruning) keep their zeros: the update is multiplied by the mask.
//
//   auto opt = make_optimizer(cfg.child("optimizer"));
//   opt->step(model.parameters(), schedule.lr(step));
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/layer.h"

namespace kiln::optim {

using nn::Parameter;

struct OptimizerOptions {
  std::string type = "adam";  // sgd | adam | adamw
  float learning_rate = 1e-3f;
  float momentum = 0.f;       // sgd
  bool nesterov = false;      // sgd
  float beta_1 = 0.9f, beta_2 = 0.999f, epsilon = 1e-7f;  // adam, adamw (epsilon as Keras)
  float weight_decay = 0.f;   // L2 added to the gradient (sgd, adam); decoupled for adamw
  float clip_norm = 0.f;      // > 0: rescale all gradients to at most this global L2 norm
  float clip_value = 0.f;     // > 0: clip each gradient element to [-v, v]
};
OptimizerOptions parse_optimizer(const Config& c);

class Optimizer {
 public:
  explicit Optimizer(OptimizerOptions o) : opt_(std::move(o)) {}
  virtual ~Optimizer() = default;
  // Clips gradients, applies one update with learning rate lr, re-applies masks.
  void step(const std::vector<Parameter*>& params, float lr);
  static void zero_grad(const std::vector<Parameter*>& params);
  const OptimizerOptions& options() const { return opt_; }
  int64_t steps() const { return t_; }

  // State for checkpoints: per-parameter moment tensors by name ("fc1.weight/m") and the step count.
  std::map<std::string, Tensor> state() const;
  void load_state(const std::map<std::string, Tensor>& s, const std::vector<Parameter*>& params);

 protected:
  // One update of parameter `i`; g already clipped and weight-decayed as the rule needs.
  virtual void update(size_t i, Parameter& p, const Tensor& g, float lr) = 0;
  virtual std::vector<std::string> slot_names() const = 0;
  Tensor& slot(size_t i, size_t k, const Shape& shape);  // slots_[k][i], zero-initialised

  OptimizerOptions opt_;
  int64_t t_ = 0;
  std::vector<std::string> names_;          // parameter names, in order
  std::vector<std::vector<Tensor>> slots_;  // [slot][param]
};

std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& o);

// ---- schedules ---------------------------------------------------------------------------------------
struct ScheduleOptions {
  std::string type = "constant";  // constant | step | exponential | cosine
  double warmup_epochs = 0;       // linear ramp from lr/warmup_steps to lr
  double step_size = 10;          // step: epochs between decays
  double gamma = 0.1;             // step: factor per decay
  double decay_rate = 0.96;       // exponential: factor per epoch
  double first_cycle = 10;        // cosine: epochs of the first cycle (T_0)
  double t_mul = 1;               // cosine: cycle length multiplier after each restart
  double min_lr = 0;              // cosine: floor
};
ScheduleOptions parse_schedule(const Config& c);

// Learning rate at optimiser step `step` (0-based), with `steps_per_epoch` steps an epoch.
double scheduled_lr(const ScheduleOptions& s, double base_lr, int64_t step, int64_t steps_per_epoch);

}  // namespace kiln::optim
