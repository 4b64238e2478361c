// Anomaly detection runs: the `data: anomaly:` section (which classes are background and which are
// signal), the per-sample scores of a trained model, and the metrics trigger users quote: ROC AUC per signal
// class and signal efficiency at fixed background rates, the thresholds calibrated on background only.
//
//   data:
//     task: autoencoder                    # targets = inputs
//     anomaly: {background: [0, 1, 2], signal: [7, 9], score: log_mse}
//
// Training and validation keep the background classes only (an autoencoder learns what is normal); the test
// split keeps background and signal, with its class labels moved to LoadedData::anomaly_labels.
#pragma once
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/nn/model.h"

namespace kiln::train {

struct AnomalyOptions {
  std::vector<std::string> background, signal;  // class names as in the data (IDX/NPY: "0", "1", ...)
  // mse | log_mse: the reconstruction error of an autoencoder; latent: sum of squares of `latent_layer`'s
  // output at inference (a VAE's means, AXOL1TL); output: the model's single output (a distilled student).
  std::string score = "mse";
  std::string latent_layer;
  std::string where;  // "file:line:col" of the section, for messages
  bool enabled() const { return !background.empty(); }
};
AnomalyOptions parse_anomaly(const Config& c);
extern const std::vector<std::string> kAnomalyScores;

// Class indices of `names` in `class_names` (InputError naming `where` and the valid names otherwise).
std::vector<int> class_indices(const std::vector<std::string>& names,
                               const std::vector<std::string>& class_names, const std::string& where,
                               const std::string& what);

// The indices of the samples whose label is one of `classes`, in order.
std::vector<int64_t> samples_of_classes(const std::vector<int>& labels, const std::vector<int>& classes);

// One score per row of x [N, ...] (inference mode, batched); higher = more anomalous.
std::vector<double> anomaly_scores(nn::Model& m, const Tensor& x, const std::string& score,
                                   const std::string& latent_layer, int64_t batch_size = 1024);
// Checks, before training, that the model can give the score (latent_layer names a top-level layer, the
// output of a reconstruction matches the input size, `output` has one output).
void check_score(const nn::Model& m, const AnomalyOptions& o);

// The deployable score of a latent-score model (AXOL1TL: the decoder never reaches the firmware): the model
// spec YAML of its layers up to `latent_layer`, then a sum_squares layer named "latent_score". The latent
// layer must be a top-level layer named in the spec (InputError otherwise).
std::string latent_score_spec(const std::string& model_yaml, const std::string& latent_layer);

struct SignalResult {
  std::string name;
  int64_t samples = 0;
  double auc = 0;
  std::vector<double> efficiency;  // at AnomalyReport::rates
};
struct AnomalyReport {
  std::string score;
  std::vector<double> rates{1e-2, 1e-3, 1e-4};
  std::vector<double>
      thresholds;  // per rate, on background; NaN when the test has too few background samples
  int64_t background_samples = 0;
  std::vector<SignalResult> signals;
  std::vector<std::vector<std::pair<double, double>>> roc;  // per signal class: (background rate, efficiency)
};
// `labels` are the test samples' class indices; background/signal are class indices.
AnomalyReport evaluate_anomaly(const std::vector<double>& scores, const std::vector<int>& labels,
                               const std::vector<int>& background, const std::vector<int>& signal,
                               const std::vector<std::string>& class_names, const std::string& score);
std::string anomaly_table(const AnomalyReport& r);  // for the terminal

}  // namespace kiln::train
