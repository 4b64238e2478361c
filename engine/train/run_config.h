// The `data:` and `training:` sections of a run's YAML, and loading the data they describe (split and
// standardised, the standardiser fitted on the training split only).
#pragma once
#include <string>

#include "engine/config.h"
#include "engine/data/dataset.h"
#include "engine/optim/optimizer.h"
#include "engine/train/anomaly.h"

namespace kiln::train {

struct DataOptions {
  std::string format = "csv";  // csv | idx | npy | h5
  // csv (h5: the file, train_x... the names of its datasets)
  std::string path, label;
  std::vector<std::string> features;
  bool header = true;
  std::string delimiter = ",";
  // idx / npy: training files, and optional separate test files
  std::string train_x, train_y, test_x, test_y;
  bool regression = false;   // task: classification | regression | autoencoder
  bool autoencoder = false;  // task: autoencoder: targets = the (standardised) inputs, flattened
  AnomalyOptions anomaly;    // anomaly: background and signal classes
  double validation_split = 0.1, test_split = 0.2;  // test_split is unused when test files are given
  bool standardize = true;
  int64_t max_samples = 0;    // > 0: keep the first N samples of the shuffled set (quick runs)
  std::string how_to_obtain;  // appended to a missing-file error
  std::string where;          // "file:line:col" of the data file's key in the config, for messages
};
DataOptions parse_data(const Config& c);

struct LoadedData {
  data::Split split;
  data::Standardizer standardizer;  // empty when standardize is off
  // Anomaly runs: the test samples' class indices (the split's own labels are cleared: the task is not
  // classification), and the background and signal class indices.
  std::vector<int> anomaly_labels, background_classes, signal_classes;
  std::vector<std::string> class_names;
};
// With `fixed`, applies that standardiser (from a checkpoint) instead of fitting one.
LoadedData load_data(const DataOptions& o, uint64_t seed, const data::Standardizer* fixed = nullptr);

struct EarlyStopping {
  std::string monitor = "val_loss";  // val_loss | val_accuracy | val_auc | val_mse
  int patience = 0;                  // 0 = off
  double min_delta = 0;
  bool restore_best = true;
};

struct TrainOptions {
  int epochs = 10;
  int64_t batch_size = 32;
  std::string loss = "cross_entropy";  // cross_entropy | binary_cross_entropy | mse | mae | l2_margin
  float label_smoothing = 0.f;
  optim::OptimizerOptions optimizer;
  optim::ScheduleOptions schedule;
  EarlyStopping early_stopping;
  uint64_t seed = 42;
  int threads = 1;
};
TrainOptions parse_training(const Config& c);

}  // namespace kiln::train
