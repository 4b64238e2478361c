// A fixed-point quantizer attached to a layer's tensor (nn::Transform): weights, biases (parameters) or the
// layer's input (activations, shared over the batch). HGQ: the fractional bits f are trainable per
// element, channel or tensor; the integer bits i are trainable under SAT modes, and under WRAP follow the
// data (a running maximum in training, a calibration pass before export). See quantization.md, section 3.
//
//   QuantSpec s;  s.f = 6;  s.train_f = true;
//   auto q = std::make_shared<FixedQuantizer>("fc1.weight_q", s, Shape{16, 64});
//   layer.set_transform(nn::Slot::kWeight, q);
#pragma once
#include <memory>
#include <string>

#include "compress/fixed_point.h"
#include "compress/quantize_ops.h"
#include "engine/nn/layer.h"

namespace kiln::compress {

enum class Granularity { kTensor, kChannel, kElement };

struct QuantSpec {
  int k = 1;            // signed; for activations under WRAP re-decided by calibration (any value < 0)
  double i = 0, f = 7;  // initial integer and fractional bits
  Round round = Round::kRnd;
  Overflow overflow = Overflow::kSat;
  Granularity granularity = Granularity::kElement;
  bool train_f = false, train_i = false;  // HGQ (train_i only under SAT modes)
  bool activation = false;                // quantizes data (running-max integer bits under WRAP)
  double f_min = -16, f_max = 24, i_min = -16, i_max = 24;  // clamps on the trainable bit range
};

class FixedQuantizer : public nn::Transform {
 public:
  // `shape`: the quantized tensor's shape (a parameter's shape, or an activation's per-sample shape).
  FixedQuantizer(std::string name, QuantSpec spec, Shape shape);

  Var apply(const Var& x, nn::Context& ctx) override;
  // An activation quantizer with per-element bits on a max pool's input: both in one op (quantize_pool.h).
  Var apply_max_pool2d(const Var& x, nn::Context& ctx, const PoolWindow2d& w) override;
  void parameters(std::vector<nn::Parameter*>& out) override;
  void buffers(std::vector<nn::Buffer>& out) override;

  // Bits per element, k + round(i) + round(f) floored at 0, broadcast to the tensor's shape:
  // differentiable in f (and i when trained), straight through the rounding. EBOPs are built from these.
  // One op (quantizer.cc), bit for bit bits_graph() in values and gradients.
  Var bits() const;
  // The definition as a graph of ops: relu(round_ste(f) + round_ste(i) + k) * mask (for tests).
  Var bits_graph() const;
  // The same as plain numbers (no graph), for reports.
  Tensor bits_value() const;
  // Pruning: elements where *mask is 0 count 0 bits in bits() (the mask outlives the quantizer; an empty
  // mask or null means none is pruned). The quantized values themselves are unchanged: a pruned weight is 0.
  void set_mask(const Tensor* mask) { mask_ = mask; }
  const Shape& shape() const { return shape_; }
  const QuantSpec& spec() const { return spec_; }
  const std::string& name() const { return name_; }
  int k() const { return static_cast<int>(k_[0]); }
  const Tensor& f() const { return f_.var.value(); }
  const Tensor& i() const { return i_.var.value(); }

  // A WRAP activation: its integer bits follow the data (a running maximum in training, calibration before
  // export) instead of training.
  bool follows_data() const { return spec_.activation && spec_.overflow == Overflow::kWrap; }
  // Calibration of WRAP activation quantizers (a check refuses others): while on, passes record min and max
  // per element and output x rounded at f only; end_calibration() sets i = integer_bits_for(min, max, f, k)
  // and k = any(min < 0).
  void begin_calibration();
  void end_calibration();

  // Frozen bits keep their values: restore_frozen_bits() after every optimiser step undoes its update.
  void freeze_bits();
  void restore_frozen_bits();

 private:
  Shape bits_shape(Granularity g) const;
  void clamp_bits();
  void track_range(const Tensor& x, bool training);
  // apply() in two parts: what a pass does besides its output (the bits clamped in training, the range
  // tracked), and the output.
  void observe(const Var& x, nn::Context& ctx);
  Var quantize(const Var& x, nn::Context& ctx);

  std::string name_;
  QuantSpec spec_;
  Shape shape_;
  Tensor k_;  // [1]: the sign bit; a buffer for activations (calibration decides it, checkpoints keep it)
  nn::Parameter f_, i_;  // f_ and i_ are parameters when trained, buffers otherwise
  Tensor lo_, hi_;       // calibration: running min / max per bit element
  bool calibrating_ = false;
  std::shared_ptr<const FixedPlan> calibration_plan_;  // calibration: x rounded at f only (apply())
  Tensor frozen_f_, frozen_i_;                         // empty unless freeze_bits()
  Tensor cache_x_, cache_f_, cache_i_, cache_out_;  // parameters at inference: the last input, bits and codes
  bool cached_ = false;
  const Tensor* mask_ = nullptr;
};

Granularity parse_granularity(const std::string& s);  // per_tensor | per_channel | per_weight (| per_element)

}  // namespace kiln::compress
