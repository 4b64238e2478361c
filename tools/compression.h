// The `compression:` section of a run, for //tools:train: attaches HGQ quantizers to the model, adds the
// EBOPs loss, keeps the accuracy-vs-EBOPs Pareto front along the beta ramp (non-dominated checkpoints in
// DIR/pareto/, pareto.csv, pareto.svg), calibrates WRAP activations after training, and writes the
// per-layer report (quantization.txt) and bit-width histograms (bit_widths.svg).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "compress/deploy.h"
#include "compress/hgq.h"
#include "compress/pruner.h"
#include "tools/run_dir.h"

namespace kiln {

struct ParetoPoint {
  int epoch;
  double beta, ebops, val_accuracy;
};

// Points not dominated by another (lower-or-equal EBOPs and higher-or-equal accuracy, one strictly).
// add() returns the epochs that the new point dominates (their checkpoints can go); false if it is itself
// dominated.
class ParetoFront {
 public:
  bool add(const ParetoPoint& p, std::vector<int>* removed);
  const std::vector<ParetoPoint>& points() const { return points_; }  // sorted by EBOPs

 private:
  std::vector<ParetoPoint> points_;
};

class CompressionRun {
 public:
  // compression may be an empty mapping; `training` holds the pruning schedule's keys; round_epochs > 0
  // overrides training.epochs (the --epochs flag).
  CompressionRun(const Config& compression, const Config& training, nn::Model& m, int round_epochs = 0);
  bool active() const { return qm_ != nullptr; }
  bool pruning() const { return pruner_ != nullptr; }
  compress::Pruner* pruner() const { return pruner_.get(); }
  // Epochs the run trains: with pruning, pretraining + rounds x epochs + fine-tuning; else `epochs`.
  int total_epochs(int epochs) const { return pruner_ ? pruner_->options().total_epochs() : epochs; }
  // After a checkpoint's weights and buffers were loaded (--resume): masks follow the loaded state.
  void loaded() const {
    if (pruner_) pruner_->sync();
  }
  void add_to(train::Trainer& tr) const;
  // " (pruning method 'pdp', sparsity 0.81)" for error messages of a pruned run, else "".
  std::string context() const;
  // After each epoch: updates the front and saves/removes checkpoints through `save(path)`.
  void on_epoch(const train::EpochRecord& r, RunDir& rd, const std::function<void(const std::string&)>& save);
  // A resumed run: the front of the epochs in `history`, and their checkpoints copied into the new run from
  // `earlier` (epoch -> checkpoint bytes, read from the resumed run's pareto/ before it was replaced).
  void resume(const std::vector<train::EpochRecord>& history, const std::map<int, std::string>& earlier,
              RunDir& rd);
  // After training, in this order: finish_pruning(), calibrate(), the test evaluation (it sees the final
  // masks and the deployed bit widths), then finish(): the deployed model's check (check_deployment),
  // pareto.csv/svg, quantization.txt, bit_widths.svg.
  void finish(nn::Model& m, const Tensor& test_x, const Tensor* test_outputs, RunDir& rd);
  // Pruning: hardens the masks of a run that ended inside the pruning stage (a resumed front checkpoint
  // evaluated with no further epochs), then pruning.txt and sparsity.svg. Nothing without pruning.
  void finish_pruning(RunDir& rd);
  // Calibration over train_x: its first `compression: calibration_samples:` rows when that key is set, by
  // default all of them.
  void calibrate(nn::Model& m, const Tensor& train_x);
  // After calibrate(): the deployed fixed-point model frozen and compared with the quantized forward on
  // test_x (deploy_check()); returns the deployed model's description ("" if it was refused). test_outputs:
  // the quantized forward's outputs on test_x if the caller has them (the test evaluation's, after
  // calibrate()); null: computed here.
  std::string check_deployment(nn::Model& m, const Tensor& test_x, const Tensor* test_outputs = nullptr);
  struct DeployCheck {
    bool done = false;
    std::string refused;  // why the model could not be frozen, if it could not
    int64_t samples = 0, mismatches = 0;
    int64_t calibration_samples = 0;  // training rows the calibration ran over
    int accumulator_bits = 0;
    double calibration_seconds = 0, check_seconds = 0;  // wall time of the two steps (metrics.json)
  };
  const DeployCheck& deploy_check() const { return deploy_; }
  // Pruning: the accuracy-vs-sparsity front of the epochs in `history` from the pruning stage on (as the
  // sparsity ramps, each epoch is a point): sparsity_front.csv and sparsity_front.svg. Nothing without
  // pruning.
  void write_sparsity_front(const std::vector<train::EpochRecord>& history, RunDir& rd) const;
  std::string report() const;  // per-layer table
  double ebops() const { return qm_ ? qm_->ebops_value() : 0; }
  double uniform_ebops(double bits) const { return qm_ ? qm_->uniform_ebops(bits) : 0; }
  double mean_bits(bool activations) const { return qm_ ? qm_->mean_bits(activations) : 0; }
  static std::string progress_stats(const train::EpochRecord& r);  // " ebops 1234 bits 5.1/6.2" or ""
  double sparsity() const { return pruner_ ? pruner_->sparsity() : 0; }
  std::string pruning_report() const { return pruner_ ? pruner_->report() : ""; }

 private:
  std::shared_ptr<compress::QuantizedModel> qm_;
  std::shared_ptr<compress::Pruner> pruner_;
  compress::HgqOptions opt_;
  ParetoFront front_;
  DeployCheck deploy_;
  int64_t calibration_samples_ = 0;  // 0: every training row
};

}  // namespace kiln
