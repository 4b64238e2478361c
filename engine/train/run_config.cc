#include "engine/train/run_config.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "engine/data/hdf5_file.h"
#include "engine/data/loaders.h"
#include "engine/utf8.h"

namespace kiln::train {

DataOptions parse_data(const Config& c) {
  DataOptions o;
  o.format = c.get<std::string>("format", "csv");
  std::vector<std::string> common{"format",      "task",        "validation_split", "test_split",
                                  "standardize", "max_samples", "how_to_obtain",    "anomaly"};
  std::vector<std::string> allowed = common;
  if (o.format == "csv") {
    for (const char* k : {"path", "label", "features", "header", "delimiter"}) allowed.push_back(k);
  } else if (o.format == "idx" || o.format == "npy" || o.format == "h5") {
    for (const char* k : {"train_x", "train_y", "test_x", "test_y"}) allowed.push_back(k);
    if (o.format == "h5") allowed.push_back("path");  // h5: one file; train_x... name its datasets
  } else {
    c.fail("format", "unknown data format '" + o.format + "' (valid: csv, idx, npy, h5)");
  }
  c.check_unused(allowed);
  std::string task = c.get<std::string>("task", "classification");
  if (task != "classification" && task != "regression" && task != "autoencoder")
    c.fail("task", "task must be 'classification', 'regression' or 'autoencoder', got '" + task + "'");
  o.regression = task == "regression";
  o.autoencoder = task == "autoencoder";
  if (c.has("anomaly")) o.anomaly = parse_anomaly(c.child("anomaly"));
  if (o.anomaly.enabled() && o.regression)
    c.fail("anomaly", "anomaly needs class labels to tell background from signal; the task is regression");
  if (o.format == "csv") {
    o.path = c.require<std::string>("path");
    o.where = c.location("path");
    o.label = c.get<std::string>("label", "");
    o.features = c.get<std::vector<std::string>>("features", {});
    o.header = c.get<bool>("header", true);
    o.delimiter = c.get<std::string>("delimiter", ",");
    if (o.delimiter.size() != 1)
      c.fail("delimiter", "delimiter must be one character, got '" + o.delimiter + "'");
  } else {
    if (o.format == "h5") o.path = c.require<std::string>("path");
    o.train_x = c.require<std::string>("train_x");
    o.train_y = c.require<std::string>("train_y");
    o.where = c.location(o.format == "h5" ? "path" : "train_x");
    o.test_x = c.get<std::string>("test_x", "");
    o.test_y = c.get<std::string>("test_y", "");
    if (o.test_x.empty() != o.test_y.empty())
      c.fail(o.test_x.empty() ? "test_y" : "test_x", "give both test_x and test_y, or neither");
  }
  o.validation_split = c.get<double>("validation_split", o.validation_split);
  o.test_split = c.get<double>("test_split", o.test_split);
  if (!(o.validation_split >= 0 && o.validation_split < 1))
    c.fail("validation_split", "validation_split must be in [0, 1)");
  if (!(o.test_split >= 0 && o.test_split < 1)) c.fail("test_split", "test_split must be in [0, 1)");
  bool separate_test = !o.test_x.empty();
  if (o.validation_split + (separate_test ? 0 : o.test_split) >= 1)
    c.fail("validation_split", "validation_split + test_split must leave training data, got " +
                                   std::to_string(o.validation_split) + " + " + std::to_string(o.test_split));
  o.standardize = c.get<bool>("standardize", true);
  o.max_samples = c.get<int64_t>("max_samples", 0);
  if (o.max_samples < 0) c.fail("max_samples", "max_samples must be >= 0");
  o.how_to_obtain = c.get<std::string>("how_to_obtain", "");
  return o;
}

namespace {

data::Dataset load_one(const DataOptions& o, const std::string& x, const std::string& y) {
  if (o.format == "idx") return data::load_idx(x, y);
  if (o.format == "h5") return data::load_h5(o.path, x, y, o.regression);
  return data::load_npy(x, y, o.regression);
}

data::Dataset first_n_shuffled(const data::Dataset& d, int64_t n, uint64_t seed) {
  if (n <= 0 || n >= d.size()) return d;
  std::vector<int64_t> idx(static_cast<size_t>(d.size()));
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(seed ^ 0x5eedULL);
  std::shuffle(idx.begin(), idx.end(), rng);
  idx.resize(static_cast<size_t>(n));
  return data::subset(d, idx);
}

// Training and validation keep the background classes; the test split keeps background and signal, its labels
// moved to anomaly_labels.
void select_anomaly(const DataOptions& o, LoadedData& out) {
  const auto& names = out.split.train.class_names;
  out.class_names = names;
  out.background_classes = class_indices(o.anomaly.background, names, o.anomaly.where, "background");
  out.signal_classes = class_indices(o.anomaly.signal, names, o.anomaly.where, "signal");
  std::vector<int> both = out.background_classes;
  both.insert(both.end(), out.signal_classes.begin(), out.signal_classes.end());
  auto pick = [](const data::Dataset& d, const std::vector<int>& classes) {
    return data::subset(d, samples_of_classes(d.labels, classes));
  };
  out.split.test = pick(out.split.test.size() ? out.split.test : out.split.val, both);
  out.split.train = pick(out.split.train, out.background_classes);
  if (out.split.train.size() == 0)
    throw InputError(o.anomaly.where + ": no training sample is of a background class");
  if (out.split.val.size()) out.split.val = pick(out.split.val, out.background_classes);
  out.anomaly_labels = out.split.test.labels;
  out.split.test.labels.clear();
}

}  // namespace

LoadedData load_data(const DataOptions& o, uint64_t seed, const data::Standardizer* fixed) {
  LoadedData out;
  try {
    if (o.format == "csv") {
      data::CsvOptions co;
      co.path = o.path;
      co.header = o.header;
      co.delimiter = o.delimiter[0];
      co.features = o.features;
      co.label = o.label;
      co.regression = o.regression;
      data::Dataset all = first_n_shuffled(data::load_csv(co), o.max_samples, seed);
      out.split = data::split(all, o.validation_split, o.test_split, seed);
    } else if (o.test_x.empty()) {
      data::Dataset all = first_n_shuffled(load_one(o, o.train_x, o.train_y), o.max_samples, seed);
      out.split = data::split(all, o.validation_split, o.test_split, seed);
    } else {
      data::Dataset train = first_n_shuffled(load_one(o, o.train_x, o.train_y), o.max_samples, seed);
      data::Split s = data::split(train, o.validation_split, 0.0, seed);
      out.split.train = std::move(s.train);
      out.split.val = std::move(s.val);
      out.split.test = load_one(o, o.test_x, o.test_y);
    }
  } catch (const InputError& e) {
    std::string msg = e.what();
    if (msg.rfind("cannot open", 0) == 0) {
      msg = o.where + ": " + msg;
      if (!o.how_to_obtain.empty()) msg += " (" + o.how_to_obtain + ")";
    }
    throw InputError(msg);
  }
  // Names go into metrics.json, plots and generated code: they must be text.
  const std::string file =
      o.format == "csv" || o.format == "h5" ? o.path : (o.train_y.empty() ? o.train_x : o.train_y);
  for (const auto& n : out.split.train.class_names) require_utf8(n, file + ": class label");
  for (const auto& n : out.split.train.feature_names)
    require_utf8(n, file + (o.format == "csv" ? ":1" : "") + ": column name");
  // Before the standardiser is fitted: an anomaly detector learns what is normal from background alone, and
  // its input scaling must not carry information about the signal classes.
  if (o.anomaly.enabled()) select_anomaly(o, out);
  if (fixed && !fixed->empty()) {
    out.standardizer = *fixed;
  } else if (o.standardize) {
    out.standardizer.fit(out.split.train.x);
  }
  if (!out.standardizer.empty()) {
    out.standardizer.apply(out.split.train.x);
    if (out.split.val.size()) out.standardizer.apply(out.split.val.x);
    if (out.split.test.size()) out.standardizer.apply(out.split.test.x);
  }
  if (o.autoencoder) {
    for (data::Dataset* d : {&out.split.train, &out.split.val, &out.split.test}) {
      d->targets = d->x.reshaped({d->size(), d->sample_size()});
      d->labels.clear();
    }
  }
  return out;
}

TrainOptions parse_training(const Config& c) {
  TrainOptions o;
  // The last six are the pruning schedule's (PQuant's training_parameters), read by compress/pruner.cc.
  c.check_unused({"epochs", "batch_size", "loss", "label_smoothing", "optimizer", "lr_schedule",
                  "early_stopping", "seed", "threads", "pretraining_epochs", "fine_tuning_epochs", "rounds",
                  "rewind", "save_weights_epoch", "pruning_first", "distillation"});
  o.epochs = c.get<int>("epochs", o.epochs);
  if (o.epochs < 1) c.fail("epochs", "epochs must be >= 1, got " + std::to_string(o.epochs));
  o.batch_size = c.get<int64_t>("batch_size", o.batch_size);
  if (o.batch_size < 1) c.fail("batch_size", "batch_size must be >= 1, got " + std::to_string(o.batch_size));
  o.loss = c.get<std::string>("loss", o.loss);
  if (o.loss != "cross_entropy" && o.loss != "binary_cross_entropy" && o.loss != "mse" && o.loss != "mae" &&
      o.loss != "l2_margin")
    c.fail("loss",
           "unknown loss '" + o.loss + "' (valid: cross_entropy, binary_cross_entropy, mse, mae, l2_margin)");
  o.label_smoothing = c.get<float>("label_smoothing", 0.f);
  if (!(o.label_smoothing >= 0.f && o.label_smoothing < 1.f))
    c.fail("label_smoothing", "label_smoothing must be in [0, 1)");
  o.optimizer = optim::parse_optimizer(c.child("optimizer"));
  o.schedule = optim::parse_schedule(c.child("lr_schedule"));
  Config es = c.child("early_stopping");
  es.check_unused({"monitor", "patience", "min_delta", "restore_best"});
  o.early_stopping.monitor = es.get<std::string>("monitor", "val_loss");
  const std::vector<std::string> monitors{"val_loss", "val_accuracy", "val_auc", "val_mse"};
  if (std::find(monitors.begin(), monitors.end(), o.early_stopping.monitor) == monitors.end())
    es.fail("monitor", "unknown monitor '" + o.early_stopping.monitor +
                           "' (valid: val_loss, val_accuracy, val_auc, val_mse)");
  o.early_stopping.patience = es.get<int>("patience", 0);
  o.early_stopping.min_delta = es.get<double>("min_delta", 0.0);
  o.early_stopping.restore_best = es.get<bool>("restore_best", true);
  if (o.early_stopping.patience < 0) es.fail("patience", "patience must be >= 0");
  o.seed = c.get<uint64_t>("seed", o.seed);
  o.threads = c.get<int>("threads", o.threads);
  if (o.threads < 0) c.fail("threads", "threads must be >= 0 (0 = all cores)");
  return o;
}

}  // namespace kiln::train
