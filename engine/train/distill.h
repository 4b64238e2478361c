// Teacher-student distillation: the `training: distillation:` section. The teacher is a trained kiln
// checkpoint run in inference mode (except in colearn); the student is the run's model, with HGQ and pruning
// on it as usual.
//
//   training:
//     loss: cross_entropy
//     distillation: {teacher: runs/fashion_mnist/model.ckpt, mode: soft, alpha: 0.9, temperature: 4}
//
// Modes (Hinton et al. 2015; PQuantML's distillers; CICADA):
//   soft        (1 - alpha) * task loss + alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)); the
//   teacher's
//               logits are computed once for the training split (the data does not change between epochs).
//   regression  the student regresses a teacher-derived score per sample (anomaly score: mse, log_mse,
//               latent, output), times score_scale, optionally rounded onto a fixed-point grid; the run's
//               loss (e.g. mae) compares them. outlier_exposure adds noisy copies of training samples, scored
//               by the teacher, so the student also learns what abnormal inputs score.
//   features    (1 - alpha) * task loss + alpha * sum of MSE(adapter(student layer), teacher layer) over the
//               `features` pairs, each through a learned linear adapter (trained with the student).
//   colearn     the teacher (initialised from its checkpoint) trains on the labels alongside the student, and
//               the student follows its current outputs as in soft mode.
#pragma once
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/train/checkpoint.h"
#include "engine/train/run_config.h"
#include "engine/train/trainer.h"

namespace kiln::train {

struct DistillOptions {
  std::string teacher, mode = "soft";  // soft | regression | features | colearn
  double alpha = 0.5, temperature = 4;
  std::string score = "log_mse", latent_layer;  // regression: the teacher's score (see AnomalyOptions)
  double score_scale = 1;
  int score_bits = 0,
      score_integer_bits = 0;  // > 0: targets rounded onto ap_fixed<bits, integer> (saturated)
  double outlier_fraction = 0, outlier_noise = 0.5;  // noise: the std added to each feature
  int outlier_shift = 0;  // > 0: images [H, W, C] moved by up to this many pixels along each axis
  std::vector<std::pair<std::string, std::string>> features;  // (student layer, teacher layer)
  std::string where;                                          // "file:line:col" of the section
  bool enabled() const { return !teacher.empty(); }
};
DistillOptions parse_distillation(const Config& c);  // c = training.distillation (may be undefined)

// T^2 * KL(softmax(t / T) || softmax(z / T)), the batch mean, for student logits z [B, C] and teacher logits
// t [B, C]; the T^2 keeps its gradients on the scale of the hard loss's (Hinton et al.). 0 when z == t.
Var soft_distillation_loss(const Var& student_logits, const Tensor& teacher_logits, double temperature);

class Distiller : public LossTerm {
 public:
  // Loads the teacher; `student_st` is the standardiser of the student's data (the teacher may have its own).
  Distiller(DistillOptions o, const data::Standardizer& student_st, uint64_t seed);
  // Before training, on the student's split: soft: the teacher's logits as the training targets (labels
  // kept); regression: the teacher's scores as the targets of every split (labels cleared), plus outlier
  // exposure in the training split. Checks the teacher's input shape against the data.
  void prepare(data::Split& s, const TrainOptions& o);
  // Installs the distillation loss (soft, features, colearn) in the trainer; adds this as a loss term.
  void attach(Trainer& tr, nn::Model& student, const TrainOptions& o, std::shared_ptr<Distiller> self);

  Var loss() override;  // colearn: the teacher's own loss (not part of the student's reported loss)
  void after_step() override;
  std::vector<std::pair<std::string, double>> stats() override;

  nn::Model& teacher() { return *teacher_; }
  const DistillOptions& options() const { return o_; }
  // The teacher's scores of the test split: as trained (scaled and rounded), and raw (for its own report).
  const std::vector<double>& test_targets() const { return test_targets_; }
  const std::vector<double>& test_scores() const { return test_scores_; }
  // x in the teacher's standardisation.
  Tensor teacher_input(const Tensor& x) const;

 private:
  Tensor teacher_logits(const Tensor& x);
  std::vector<double> teacher_scores(const Tensor& x, std::vector<double>* raw = nullptr);
  double to_target(double score) const;

  DistillOptions o_;
  Checkpoint ck_;
  std::unique_ptr<nn::Model> teacher_;
  data::Standardizer student_st_;
  std::mt19937_64 rng_;
  Trainer* trainer_ = nullptr;
  std::unique_ptr<optim::Optimizer> own_opt_;  // the adapters' and (colearn) the teacher's parameters
  std::vector<nn::Parameter*> own_params_;
  std::vector<nn::Parameter> adapters_;  // features: weight [Ds, Dt] and bias [Dt] per pair
  std::set<std::string> teacher_capture_;
  Var teacher_loss_;
  double kd_sum_ = 0, teacher_loss_sum_ = 0;
  int64_t steps_ = 0;
  std::vector<double> test_targets_, test_scores_;
};

}  // namespace kiln::train
