// Learning-rate schedules: a linear warm-up, then constant, step, exponential or cosine with warm restarts
// (SGDR, Loshchilov & Hutter), all as functions of the (fractional) epoch after the warm-up.
#include <cmath>

#include "engine/optim/optimizer.h"

namespace kiln::optim {

ScheduleOptions parse_schedule(const Config& c) {
  ScheduleOptions s;
  c.check_unused({"type", "warmup_epochs", "step_size", "gamma", "decay_rate", "first_cycle", "t_mul", "min_lr"});
  s.type = c.get<std::string>("type", s.type);
  if (s.type != "constant" && s.type != "step" && s.type != "exponential" && s.type != "cosine")
    c.fail("type", "unknown lr_schedule '" + s.type + "' (valid: constant, step, exponential, cosine)");
  s.warmup_epochs = c.get<double>("warmup_epochs", s.warmup_epochs);
  s.step_size = c.get<double>("step_size", s.step_size);
  s.gamma = c.get<double>("gamma", s.gamma);
  s.decay_rate = c.get<double>("decay_rate", s.decay_rate);
  s.first_cycle = c.get<double>("first_cycle", s.first_cycle);
  s.t_mul = c.get<double>("t_mul", s.t_mul);
  s.min_lr = c.get<double>("min_lr", s.min_lr);
  if (s.warmup_epochs < 0) c.fail("warmup_epochs", "warmup_epochs must be >= 0");
  if (s.step_size <= 0) c.fail("step_size", "step_size must be > 0");
  if (s.first_cycle <= 0) c.fail("first_cycle", "first_cycle must be > 0");
  if (s.t_mul < 1) c.fail("t_mul", "t_mul must be >= 1");
  if (s.gamma <= 0 || s.decay_rate <= 0) c.fail(s.gamma <= 0 ? "gamma" : "decay_rate", "decay factors must be > 0");
  return s;
}

double scheduled_lr(const ScheduleOptions& s, double base, int64_t step, int64_t steps_per_epoch) {
  double spe = static_cast<double>(std::max<int64_t>(steps_per_epoch, 1));
  double warm_steps = s.warmup_epochs * spe;
  if (step < warm_steps) return base * static_cast<double>(step + 1) / warm_steps;
  double e = (static_cast<double>(step) - warm_steps) / spe;  // epochs since the warm-up ended
  if (s.type == "step") return base * std::pow(s.gamma, std::floor(e / s.step_size));
  if (s.type == "exponential") return base * std::pow(s.decay_rate, e);
  if (s.type == "cosine") {
    double len = s.first_cycle, t = e;
    while (t >= len) t -= len, len *= s.t_mul;  // warm restart
    return s.min_lr + (base - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * t / len));
  }
  return base;
}

}  // namespace kiln::optim
