// HGQ quantization-aware training: the `compression: quantization:` section (PQuant/HGQ key names),
// quantizers attached to every Dense/Conv layer's input, weight and bias, the EBOPs resource estimate,
// and the loss term beta * EBOPs + gamma * sum(bits) with beta scheduled per epoch or steered by a PID
// controller toward a target EBOPs. Facts: ../shared/reference/quantization.md, sections 3, 4 and 6.
//
//   compression:
//     quantization:
//       enable_quantization: true
//       use_high_granularity_quantization: true   # trainable bit widths
//       default_fractional_bits: 6                # weights and biases
//       default_data_fractional_bits: 6           # layer inputs (activations)
//       overflow_mode_data: WRAP
//       hgq_beta: 1.0e-6
//       beta_schedule: {type: log, start_epoch: 5, end_epoch: 60, final_beta: 1.0e-4}
#pragma once
#include <map>
#include <memory>

#include "compress/lut.h"
#include "compress/quantizer.h"
#include "engine/nn/model.h"
#include "engine/train/checkpoint.h"
#include "engine/train/trainer.h"

namespace kiln::compress {

struct BetaSchedule {
  std::string type = "constant";  // constant | linear | log (geometric)
  double start_epoch = 0, end_epoch = 0, final_beta = 0;
};

struct PidOptions {
  double target_ebops = 0;  // > 0 enables the controller
  double p = 1, i = 2e-3, d = 0;
};

// Bit widths stop training at the end of epoch `epoch`, or of the first epoch whose EBOPs are <= `ebops`
// (0: never), so that the weights then adapt to fixed widths (the beta term no longer moves them).
struct FreezeBits {
  int epoch = 0;
  double ebops = 0;
};

struct LayerQuantOverride {
  bool enable = true;
  std::map<nn::Slot, QuantSpec> specs;  // per slot, complete (defaults merged)
};

struct HgqOptions {
  bool enable = false;
  QuantSpec weight, bias, data;  // defaults for parameters and for layer inputs
  double beta = 1e-5, gamma = 0;
  BetaSchedule schedule;
  PidOptions pid;
  FreezeBits freeze;
  std::map<std::string, LayerQuantOverride> layer_specific;
  // Activations as the hardware computes them: sigmoid, tanh and softmax through hls4ml's tables
  // (overridable), tanh as hard tanh (clip to [-1, 1]) unless use_real_tanh.
  bool use_lut_activations = true, use_real_tanh = false;
  // A Dense/Conv with a linear activation followed by BatchNorm gets the BatchNorm folded into its weight
  // and bias before their quantizers (statistics frozen at their running values; gamma, beta trained).
  bool fold_batch_norm = true;
  LutSpec sigmoid_table = LutSpec::sigmoid(), tanh_table = LutSpec::tanh(), gelu_table = LutSpec::gelu();
  SoftmaxLutSpec softmax_table;
  // The softmax of attention layers over the raw scores Q K^T (its exp table absorbs the 1/sqrt(d) scale):
  // inputs saturate at +-64 (ap_fixed<16,7,AP_RND,AP_SAT>), a finer grid than hls4ml's default input type.
  SoftmaxLutSpec attention_softmax_table = default_attention_softmax();
  static SoftmaxLutSpec default_attention_softmax();
};

// The activation of a layer evaluated as the hardware does (nn::Slot::kActivation).
class LutActivation : public nn::Transform {
 public:
  LutActivation(std::string function, const HgqOptions& o);
  LutActivation(const SoftmaxLutSpec& softmax);  // a softmax with its own table (attention)
  Var apply(const Var& x, nn::Context& ctx) override;
  const std::string& function() const { return function_; }  // sigmoid | tanh | hard_tanh | softmax
  const LutSpec& table() const {                             // sigmoid, tanh and gelu
    return function_ == "sigmoid" ? sigmoid_ : function_ == "gelu" ? gelu_ : tanh_;
  }
  const SoftmaxLutSpec& softmax_table() const { return softmax_; }

 private:
  std::string function_;  // sigmoid | tanh | hard_tanh | softmax
  LutSpec sigmoid_, tanh_, gelu_;
  SoftmaxLutSpec softmax_;
};
HgqOptions parse_quantization(const Config& c);

// A layer's weight or bias with the following BatchNorm folded in (w * scale, or b * scale + shift),
// then quantized: the folded values are what the hardware stores.
class FoldedParam : public nn::Transform {
 public:
  FoldedParam(nn::Layer* bn, bool is_bias, std::shared_ptr<FixedQuantizer> q)
      : bn_(bn), is_bias_(is_bias), q_(std::move(q)) {}
  Var fold(const Var& v) const;
  Tensor fold_value(const Tensor& v) const;
  Var apply(const Var& v, nn::Context& ctx) override { return q_->apply(fold(v), ctx); }
  void parameters(std::vector<nn::Parameter*>& out) override { q_->parameters(out); }
  void buffers(std::vector<nn::Buffer>& out) override { q_->buffers(out); }

 private:
  nn::Layer* bn_;
  bool is_bias_;
  std::shared_ptr<FixedQuantizer> q_;
};

// The quantizers of one layer (and the BatchNorm folded into it, if any). Pooling layers have only an
// input quantizer (weight and bias null). An unfolded BatchNorm's weight and bias quantize its scale and
// shift. A residual block's add has two: input (the block's input) and input2 (the body's output).
struct LayerQuant {
  nn::Layer* layer = nullptr;
  std::shared_ptr<FixedQuantizer> input, input2, weight, bias;
  nn::Layer* folded_bn = nullptr;
  std::shared_ptr<FoldedParam> fold_weight, fold_bias;
};

// HGQ2's weight of an add against a multiply-accumulate bit (quantization.md, section 4).
constexpr float kAddEbopsScale = 0.65f;

class QuantizedModel {
 public:
  // Attaches quantizers to every layer with slots (Dense, Conv1D/2D, DepthwiseConv2D and BatchNorm that is
  // not folded: input, weight, bias; pooling and sum_squares: input; residual blocks: both inputs of the
  // add), except those disabled in layer_specific; throws InputError for a layer_specific name that is not
  // in the model.
  QuantizedModel(nn::Model& m, const HgqOptions& o);
  const std::vector<LayerQuant>& layers() const { return layers_; }
  std::vector<FixedQuantizer*> quantizers() const;

  Var ebops(const LayerQuant& l) const;  // differentiable in the bit widths
  Var attention_ebops(const nn::Layer& l, const Var& bits) const;
  Var layer_norm_ebops(const nn::Layer& l, const Var& bx, const Var& bg, const Var& bb) const;
  Var total_ebops() const;
  double ebops_value() const;
  // EBOPs of the same layers with every input, weight and bias `bits` wide (the uniform baseline).
  double uniform_ebops(double bits) const;
  Var sum_bits() const;  // over every quantized element
  double mean_bits(bool activations) const;

  // Sets the integer bits (and signs) of WRAP activations from the data: passes over `x` in batches that
  // trace each such activation unwrapped, rounded at its f (SAT activations keep their trained bits). The
  // result does not depend on the batch size (a sample's forward does not, and min / max are exact).
  void calibrate(nn::Model& m, const Tensor& x, int64_t batch_size = kCalibrationBatch);
  // Smaller than a training batch: a batch's activations then stay in cache from one layer to the next
  // (the Fashion-MNIST CNN's first conv output is 1.4 MB at 32 samples, 5.5 MB at 128). Its 54,000-image
  // calibration took 2.07-2.37 s at 32 against 2.63-2.80 s at 128 (AMD EPYC, 1 thread, 3 interleaved runs).
  static constexpr int64_t kCalibrationBatch = 32;

 private:
  std::vector<LayerQuant> layers_;
  std::vector<std::shared_ptr<LutActivation>> activations_;
  SoftmaxLutSpec attention_softmax_;
};

// beta(epoch) * EBOPs + gamma * sum(bits), with per-epoch stats ebops, beta, mean_weight_bits,
// mean_input_bits.
class HgqLoss : public train::LossTerm {
 public:
  HgqLoss(std::shared_ptr<QuantizedModel> qm, HgqOptions o);
  void start_epoch(int epoch) override;
  Var loss() override;
  std::vector<std::pair<std::string, double>> stats() override;
  void end_epoch(const train::EpochRecord& r) override;
  void resume(const std::vector<train::EpochRecord>& history) override;  // replays the PID from "ebops"
  void after_step() override;
  double beta() const { return beta_; }
  bool bits_frozen() const { return frozen_; }

 private:
  std::shared_ptr<QuantizedModel> qm_;
  HgqOptions o_;
  double beta_;
  void update_pid(double ebops);  // after an epoch that ended at `ebops`
  double pid_integral_ = 0, pid_prev_ = 0;
  double pid_scale_ = 1;
  bool frozen_ = false;
  bool freezes_at(int epoch, double ebops) const;
  void freeze();
};

double scheduled_beta(const HgqOptions& o, int epoch);

// A trained model back from its checkpoint with its quantizers (from the run config stored in the
// checkpoint) and every weight and bit width loaded; `quantized` is null for a float model.
// A checkpoint trained with `compression: pruning:` comes back with its pruner, its masks hardened (a
// checkpoint saved inside the pruning stage is deployed as it would be at the stage's end). Defined in
// pruner.cc.
class Pruner;
struct RestoredModel {
  std::unique_ptr<nn::Model> model;
  std::shared_ptr<QuantizedModel> quantized;
  std::shared_ptr<Pruner> pruner;  // null without pruning
};
RestoredModel restore_quantized(const train::Checkpoint& c);
// The quantizers and pruner a run config's `compression:` section (YAML text; `name` for messages) puts on
// model m, as //tools:train does before it loads a checkpoint; either is null when the section is absent or
// disabled. restore_quantized uses it, and so does the importer before it saves a checkpoint.
struct AttachedCompression {
  std::shared_ptr<QuantizedModel> quantized;
  std::shared_ptr<Pruner> pruner;
};
AttachedCompression attach_compression(nn::Model& m, const std::string& config_yaml, const std::string& name);

}  // namespace kiln::compress
