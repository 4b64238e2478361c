// Pruning methods of the PQuant family (../shared/reference/pruning.md): the interface each method
// implements, and the registry `pruning_method:` -> method. One file per method (prune_<name>.cc).
//
// A method sees the model's prunable kernels (Dense/Conv weights) as Targets. During the pruning stage
// (PQuant's rounds) the forward pass uses weight(i, w): a soft mask, a reparametrisation or w * hard mask.
// When the stage ends, finalize() decides the hard masks and writes the effective weights into the
// parameters; from then on (fine-tuning, deployment, code generation) every method is the same plain
// w * mask, so the deployed integer model and the generated C see ordinary weights with zeros.
//
// Layouts: the last axis of a kernel is the output unit (a Dense neuron or a Conv output channel); the one
// before it the input channel (Dense: the input feature). Dense [in, out], Conv1D [k, cin, cout],
// Conv2D [kh, kw, cin, cout], DepthwiseConv2D [kh, kw, c] (its last axis is both input and output channel).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/config.h"
#include "engine/nn/layer.h"

namespace kiln::compress {

// One prunable kernel.
struct PruneTarget {
  nn::Layer* layer = nullptr;
  nn::Parameter* weight = nullptr;  // the kernel; its `mask` is kept equal to `mask` below by the Pruner
  nn::Parameter* bias = nullptr;    // may be null; structured methods zero the bias of a removed unit
  Tensor mask;                      // hard 0/1 mask of the kernel's shape; all ones until something is pruned
  Tensor bias_mask;                 // [units] 0/1 (structured pruning), empty = keep every bias
  int64_t units() const { return weight->var.shape().back(); }       // output neurons / channels
  int64_t per_unit() const { return weight->var.size() / units(); }  // weights feeding one unit
  bool depthwise() const { return layer->type() == "depthwise_conv2d"; }
  // Input channels (Dense: input features): the second-to-last axis, the last for depthwise kernels.
  int64_t in_channels() const {
    const Shape& s = weight->var.shape();
    return depthwise() || s.size() < 2 ? s.back() : s[s.size() - 2];
  }
};

// The target of a layer with a "weight" parameter, as the Pruner starts it: the layer's weight and bias (null
// without one), mask all ones, bias_mask all ones of the bias's shape (empty without a bias).
PruneTarget make_prune_target(nn::Layer* l);

// Settings every method shares (the `compression: pruning:` section and the schedule in `training:`).
struct PruneCommon {
  double sparsity = 0.8;  // target fraction of removed weights (or units, for structured methods)
  int epochs = 1;         // E: epochs of one pruning round (methods' per-epoch schedules use it)
  int rounds = 1;
};

class PruneMethod {
 public:
  virtual ~PruneMethod() = default;
  virtual std::string name() const = 0;
  // Structured methods remove whole units (neurons, channels): finalize() then sets bias_mask too.
  virtual bool structured() const { return false; }

  // Called once, with the model's targets (the vector outlives the method). Create per-target trainable
  // parameters and state buffers here; name them "<layer>.weight_prune.<what>" so checkpoints carry them.
  virtual void attach(std::vector<PruneTarget>* targets) { targets_ = targets; }
  // The weight the forward pass uses during the pruning stage. Default: w * hard mask.
  virtual Var weight(size_t i, const Var& w, nn::Context& ctx);
  // Data the method needs, seen in training forward passes of the pruning stage: the layer's input
  // ([B, ...], before any quantizer) and its output ([B, ...], after the activation).
  virtual bool wants_inputs() const { return false; }
  virtual void observe_input(size_t /*i*/, const Tensor& /*x*/) {}
  virtual bool wants_outputs() const { return false; }
  virtual void observe_output(size_t /*i*/, const Tensor& /*y*/) {}
  // The method's term of the training loss, called once per training step; undefined Var = none.
  virtual Var loss() { return Var(); }

  // Epoch hooks of the pruning stage: `round` 0-based, `epoch` 0-based within the round (0..E-1), and
  // `stage_epoch` 0-based across rounds (round * E + epoch).
  virtual void start_epoch(int /*round*/, int /*epoch*/, int /*stage_epoch*/) {}
  virtual void end_epoch(int /*round*/, int /*epoch*/, int /*stage_epoch*/) {}
  virtual void end_round(int /*round*/) {}

  // What would be kept if the masks were hardened now (0/1, the kernel's shape): the sparsity column of
  // history.csv. Default: the hard mask.
  virtual Tensor keep_mask(size_t i);
  // Ends the pruning stage: every target's `mask` (and `bias_mask` for structured methods) becomes the
  // method's final hard mask, and weight->var becomes the effective weight times the mask. Default:
  // mask = keep_mask(i), weight *= mask.
  virtual void finalize();

  // Trainable parameters and state buffers of target i (global state: report it with target 0).
  virtual void parameters(size_t /*i*/, std::vector<nn::Parameter*>& /*out*/) {}
  virtual void buffers(size_t /*i*/, std::vector<nn::Buffer>& /*out*/) {}
  // Logged per epoch (history.csv columns), e.g. {"cs_beta", 12.5}. Same keys every epoch.
  virtual std::vector<std::pair<std::string, double>> stats() { return {}; }

 protected:
  std::vector<PruneTarget>& targets() { return *targets_; }
  std::vector<PruneTarget>* targets_ = nullptr;
};
using PruneMethodPtr = std::unique_ptr<PruneMethod>;

// Reads the method's own keys from `c` (the `compression: pruning:` mapping; the shared keys are already
// read). Unknown `pruning_method` names the key and the known methods.
PruneMethodPtr make_prune_method(const Config& c, const std::string& method, const PruneCommon& common);
std::vector<std::string> prune_method_names();
// The method's own keys (for check_unused of the pruning section).
std::vector<std::string> prune_method_keys(const std::string& method);

// Factories, one per method file.
PruneMethodPtr make_magnitude(const Config& c, const PruneCommon& common);
PruneMethodPtr make_cs(const Config& c, const PruneCommon& common);
PruneMethodPtr make_dst(const Config& c, const PruneCommon& common);
PruneMethodPtr make_pdp(const Config& c, const PruneCommon& common);
PruneMethodPtr make_wanda(const Config& c, const PruneCommon& common);
PruneMethodPtr make_autosparse(const Config& c, const PruneCommon& common);
PruneMethodPtr make_activation_pruning(const Config& c, const PruneCommon& common);
PruneMethodPtr make_mdmm(const Config& c, const PruneCommon& common);

// Helpers shared by methods.
// The value at rank k (0-based, ascending) of v's elements, by nth_element on a copy.
float kth_smallest(const std::vector<float>& v, size_t k);
// floor(frac * n) in [0, n], robust to frac * n landing just below an integer (0.7 * 10 = 6.9999...): how
// many of n weights (units) a fraction removes.
int64_t count_of(double frac, int64_t n);
// 0/1 mask keeping the `keep` largest of `score` (ties broken by index, so exactly `keep` ones).
Tensor keep_largest(const Tensor& score, int64_t keep);
// Per-unit (last axis) L2 norms of a kernel: [units].
Tensor unit_norms(const Tensor& w);
// A number as a message shows it ("0.5", "1e-06").
std::string prune_num(double v);

// Trainable thresholds (dst, autosparse): one per weight, per output unit or per layer (`threshold_type`:
// weightwise | channelwise (the default) | layerwise; anything else names the key).
enum class ThresholdGranularity { kWeight, kChannel, kLayer };
ThresholdGranularity parse_threshold_type(const Config& c);
Shape threshold_shape(ThresholdGranularity g, const Tensor& w);
// The threshold of kernel element j (row-major: the output unit is j % units).
inline int64_t threshold_index(ThresholdGranularity g, int64_t j, int64_t units) {
  return g == ThresholdGranularity::kWeight ? j : g == ThresholdGranularity::kChannel ? j % units : 0;
}

}  // namespace kiln::compress
