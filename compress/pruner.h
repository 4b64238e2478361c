// Pruning in a training run: the `compression: pruning:` section (PQuant's key names), the method's
// transforms on every prunable kernel, and PQuant's schedule driven from the trainer's epochs:
//
//   pretraining_epochs (no pruning) -> rounds x epochs (the method prunes; round 0 saves the weights at
//   save_weights_epoch; `rewind` never | every-round | post-training-stage restores them, masks kept)
//   -> hard masks -> fine_tuning_epochs (fixed masks).
//
//   compression:
//     pruning: {pruning_method: pdp, sparsity: 0.8, disable_pruning_for_layers: [out], epsilon: 0.015}
//   training: {epochs: 10, pretraining_epochs: 2, rounds: 1, fine_tuning_epochs: 4, rewind: never}
//
// With pruning, training.epochs is the length of one round (as in PQuant); the run trains
// pretraining_epochs + rounds * epochs + fine_tuning_epochs epochs. Everything the schedule needs to
// continue (masks, the stage, saved weights, the method's state) is in buffers, so checkpoints carry it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "compress/hgq.h"
#include "compress/prune_method.h"
#include "engine/train/trainer.h"

namespace kiln::compress {

struct PruningOptions {
  bool enable = false;
  std::string method;
  PruneCommon common;
  std::vector<std::string> disable_for_layers;
  int pretraining_epochs = 0, fine_tuning_epochs = 0;
  int save_weights_epoch = 0;    // epoch of round 0 (0-based) whose weights a rewind restores
  std::string rewind = "never";  // never | every-round | post-training-stage
  bool pruning_first = true;     // with HGQ: prune the float weight, then quantize (else the reverse)
  // Stop when validation accuracy falls below collapse_factor x chance after pruning starts (0 = off).
  double collapse_factor = 1.5;
  Config section;     // the method reads its own keys from here
  std::string where;  // "file:line:col" of the section, for messages
  int total_epochs() const { return pretraining_epochs + common.rounds * common.epochs + fine_tuning_epochs; }
};
// `pruning`: the compression: pruning: mapping; `training`: the training: mapping (schedule keys).
PruningOptions parse_pruning(const Config& pruning, const Config& training);
// The schedule keys read from `training:` (allowed there; an error without a pruning section).
const std::vector<std::string>& prune_schedule_keys();

struct PruneLayerStats {
  std::string layer;
  int64_t weights = 0, kept = 0, units = 0, kept_units = 0;
};

class Pruner : public train::LossTerm {
 public:
  enum Stage { kPretraining = 0, kPruning = 1, kFinal = 2 };
  // Attaches the method to every Dense/Conv kernel not disabled. With `qm`, the weight quantizers count
  // no bits for pruned weights, and the prune transform wraps the quantizer's (order: pruning_first).
  Pruner(nn::Model& m, PruningOptions o, QuantizedModel* qm = nullptr);

  void start_epoch(int epoch) override;
  Var loss() override;
  std::vector<std::pair<std::string, double>> stats() override;
  void end_epoch(const train::EpochRecord& r) override;
  void resume(const std::vector<train::EpochRecord>& history) override;

  // After the model's buffers were loaded from a checkpoint: parameter masks follow the loaded masks.
  void sync();
  // Training ended (or stopped early) before the pruning stage did: the masks become hard now.
  void finish();
  void set_classes(int n) { classes_ = n; }  // the collapse guard's chance level is 1 / n
  Stage stage() const { return static_cast<Stage>(static_cast<int>(stage_[0])); }
  const PruningOptions& options() const { return o_; }
  PruneMethod& method() { return *method_; }
  std::vector<PruneTarget>& targets() { return targets_; }

  // Fraction of the targets' weights pruned (or that the method would prune now, during the stage).
  double sparsity();
  std::vector<PruneLayerStats> layer_stats();
  std::string report();  // per-layer table

  // Internal, for the transforms: the weight as the forward pass uses it.
  Var weight(size_t i, const Var& w, nn::Context& ctx);
  void observe_input(size_t i, const Tensor& x, const nn::Context& ctx);
  void observe_output(size_t i, const Tensor& y, const nn::Context& ctx);

 private:
  void set_stage(Stage s) { stage_[0] = static_cast<float>(s); }
  std::vector<PruneTarget*> all_targets();  // the method's targets, then the passive ones
  Tensor keep(size_t i);                    // what is kept of all_targets()[i] now
  void propagate_removed_units();
  void harden();  // method finalize, masks into parameters (and bias masks)
  void rewind_weights();
  void save_weights();
  std::string where_epoch(int epoch) const;

  nn::Model& m_;
  PruningOptions o_;
  PruneMethodPtr method_;
  std::vector<PruneTarget> targets_;
  std::vector<PruneTarget> passive_;  // not pruned by the method; masked where their inputs are removed units
  Tensor stage_{Shape{1}, 0.f};
  Tensor saved_flag_{Shape{1}, 0.f};
  std::vector<Tensor> saved_w_, saved_b_;  // rewind point (allocated only when rewind != never)
  int epoch_ = 0;                          // the epoch in progress (1-based)
  int classes_ = 0;
};

}  // namespace kiln::compress
