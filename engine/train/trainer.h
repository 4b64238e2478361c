// The training loop: mini-batches, loss, backward, optimiser step with a scheduled learning rate,
// per-epoch validation, early stopping. Each epoch's shuffle and dropout draw from RNGs seeded by
// (seed, epoch), so a run resumed from a checkpoint continues exactly as an uninterrupted one would.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "engine/data/dataset.h"
#include "engine/nn/model.h"
#include "engine/train/run_config.h"

namespace kiln::train {

// The loss chosen in the config, from model outputs and the batch's labels (classification) or
// targets (regression). Class labels are turned into the targets a loss needs (one-hot, +-1).
Var compute_loss(const TrainOptions& o, const Var& out, const std::vector<int>& labels,
                 const Tensor& targets);

struct EvalResult {
  double loss = 0, accuracy = NAN, auc = NAN, mse = NAN;  // accuracy and auc for classification
  std::vector<double> auc_per_class;
  Tensor outputs;  // [N, outputs]
};
EvalResult evaluate(nn::Model& m, const data::Dataset& d, const TrainOptions& o, int64_t batch_size = 1024);

struct EpochRecord {
  int epoch = 0;
  double lr = 0, train_loss = 0, train_accuracy = NAN;
  double val_loss = NAN, val_accuracy = NAN, val_auc = NAN, val_mse = NAN;
  double seconds = 0, samples_per_second = 0;
  std::vector<std::pair<std::string, double>> extra;  // from loss terms: "ebops", "beta", ...
};

// An extra term of the training loss, added by compression methods (HGQ's beta * EBOPs + gamma * bits).
class LossTerm {
 public:
  virtual ~LossTerm() = default;
  virtual void start_epoch(int /*epoch*/) {}  // schedules (e.g. beta) move here
  virtual Var loss() = 0;  // added to the task loss at every training step (an undefined Var: nothing)
  // Logged per epoch (history.csv columns), computed after the epoch's training steps.
  virtual std::vector<std::pair<std::string, double>> stats() { return {}; }
  virtual void end_epoch(const EpochRecord& /*r*/) {}  // controllers (e.g. PID on EBOPs) react here
  virtual void after_step() {}                         // projections after each optimiser step
  // Sets the term's state to what it was after the epochs in `history` (a resumed run continues exactly);
  // called when fit() starts. State a term keeps across epochs must be recoverable from its stats().
  virtual void resume(const std::vector<EpochRecord>& /*history*/) {}
};

struct BatchProgress {
  int epoch;
  int64_t batch, batches, samples;
  double loss, accuracy;  // running means over the epoch so far
};

void set_threads(int n);  // OpenMP and Eigen; 0 = all cores

class Trainer {
 public:
  Trainer(nn::Model& m, TrainOptions o);
  using BatchFn = std::function<void(const BatchProgress&)>;
  using EpochFn = std::function<void(const EpochRecord&)>;
  // Trains epochs history().size()+1 .. options().epochs (or until early stopping).
  void fit(const data::Dataset& train, const data::Dataset& val, const BatchFn& on_batch,
           const EpochFn& on_epoch);

  void add_loss_term(std::shared_ptr<LossTerm> t) { terms_.push_back(std::move(t)); }
  // Replaces the task loss of training steps (compute_loss) by fn(outputs, x, labels, targets, ctx): a
  // distillation loss that runs a teacher on x. Validation keeps compute_loss.
  using TaskLossFn = std::function<Var(const Var& out, const Tensor& x, const std::vector<int>& labels,
                                       const Tensor& targets, nn::Context& ctx)>;
  void set_task_loss(TaskLossFn fn) { task_loss_ = std::move(fn); }
  // Layers whose outputs training steps keep in ctx.captured (feature distillation reads them).
  void set_capture(std::set<std::string> names) { capture_ = std::move(names); }
  double current_lr() const { return lr_; }  // of the step being taken
  optim::Optimizer& optimizer() { return *opt_; }
  std::vector<EpochRecord>& history() { return history_; }
  const std::vector<EpochRecord>& history() const { return history_; }
  const TrainOptions& options() const { return o_; }
  int best_epoch() const { return best_epoch_; }
  bool stopped_early() const { return stopped_early_; }
  // Early stopping with restore_best keeps the best epoch's parameters and buffers (by name); a checkpoint
  // carries them so that a resumed run restores the same best epoch as an uninterrupted one.
  std::map<std::string, Tensor> best_state() const;
  void set_best_state(const std::map<std::string, Tensor>& s);  // names checked when fit() starts

 private:
  double monitored(const EpochRecord& r) const;  // lower is better (accuracy and AUC negated)
  nn::Model& m_;
  TrainOptions o_;
  std::unique_ptr<optim::Optimizer> opt_;
  std::vector<EpochRecord> history_;
  std::vector<std::shared_ptr<LossTerm>> terms_;
  TaskLossFn task_loss_;
  std::set<std::string> capture_;
  double lr_ = 0;
  int best_epoch_ = 0;
  bool stopped_early_ = false;
  std::map<std::string, Tensor> best_;  // the best epoch's parameters and buffers (restore_best)
};

}  // namespace kiln::train
