#include "tools/train_report.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "engine/metrics.h"
#include "tools/plot.h"

namespace kiln {

std::string fmt_fixed(double v, int prec) {
  if (!std::isfinite(v)) return "";
  std::ostringstream os;
  os << std::setprecision(prec) << std::fixed << v;
  return os.str();
}

std::string history_csv(const std::vector<train::EpochRecord>& h) {
  std::ostringstream os;
  os << "epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,val_auc,val_mse,seconds,samples_per_second";
  if (!h.empty())
    for (const auto& kv : h.front().extra) os << ',' << kv.first;  // loss terms' columns (ebops, beta, ...)
  os << '\n';
  for (const auto& r : h) {
    os << r.epoch << ',' << std::setprecision(6) << r.lr << ',' << fmt_fixed(r.train_loss, 6) << ','
       << fmt_fixed(r.train_accuracy, 6) << ',' << fmt_fixed(r.val_loss, 6) << ','
       << fmt_fixed(r.val_accuracy, 6) << ',' << fmt_fixed(r.val_auc, 6) << ',' << fmt_fixed(r.val_mse, 6)
       << ',' << fmt_fixed(r.seconds, 3) << ',' << fmt_fixed(r.samples_per_second, 1);
    for (const auto& kv : r.extra) os << ',' << std::setprecision(8) << kv.second;
    os << '\n';
  }
  return os.str();
}

void write_curves(const std::string& path, const std::vector<train::EpochRecord>& h, bool classification) {
  plot::Series tl{"train", {}, {}}, vl{"validation", {}, {}}, ta{"train", {}, {}}, va{"validation", {}, {}},
      auc{"validation AUC (mean one-vs-rest)", {}, {}}, lr{"learning rate", {}, {}};
  for (const auto& r : h) {
    double e = r.epoch;
    tl.x.push_back(e), tl.y.push_back(r.train_loss);
    vl.x.push_back(e), vl.y.push_back(r.val_loss);
    ta.x.push_back(e), ta.y.push_back(r.train_accuracy);
    va.x.push_back(e), va.y.push_back(classification ? r.val_accuracy : r.val_mse);
    auc.x.push_back(e), auc.y.push_back(r.val_auc);
    lr.x.push_back(e), lr.y.push_back(r.lr);
  }
  std::vector<plot::Chart> panels{{"Loss", "epoch", "loss", {tl, vl}}};
  if (classification) {
    panels.push_back({"Accuracy", "epoch", "accuracy", {ta, va}});
    panels.push_back({"ROC AUC", "epoch", "AUC", {auc}});
  } else {
    panels.push_back({"Validation MSE", "epoch", "MSE", {va}});
  }
  panels.push_back({"Learning rate", "epoch", "learning rate", {lr}});
  plot::write_svg(path, panels);
}

std::string metrics_json(const train::EvalResult& test, const data::Dataset& d, const train::Trainer& tr,
                         const nn::Model& m, double wall, const CompressionRun& comp,
                         const nlohmann::ordered_json& extra) {
  nlohmann::ordered_json o;  // keys in the order written; NaN and inf are written as null
  const auto& h = tr.history();
  o["epochs"] = h.size();
  o["best_epoch"] = tr.best_epoch() ? static_cast<size_t>(tr.best_epoch()) : h.size();
  o["stopped_early"] = tr.stopped_early();
  o["parameters"] = m.num_params();
  o["test_samples"] = d.size();
  o["test_loss"] = test.loss;
  if (!d.labels.empty()) {
    o["test_accuracy"] = test.accuracy;
    o["test_auc_mean"] = test.auc;
    nlohmann::ordered_json auc = nlohmann::ordered_json::object();
    for (size_t c = 0; c < test.auc_per_class.size(); ++c)
      auc[c < d.class_names.size() ? d.class_names[c] : std::to_string(c)] = test.auc_per_class[c];
    o["test_auc_per_class"] = auc;
    int classes = std::max<int>(d.num_classes(), static_cast<int>(test.outputs.dim(1)));
    o["class_names"] = d.class_names;
    o["confusion_matrix"] = confusion_matrix(test.outputs, d.labels, classes);
  } else {
    o["test_mse"] = test.mse;
  }
  if (!h.empty()) {
    o["final_train_loss"] = h.back().train_loss;
    o["final_val_loss"] = h.back().val_loss;
    o["final_val_accuracy"] = h.back().val_accuracy;
    double secs = 0, samples = 0;
    for (const auto& r : h) secs += r.seconds, samples += r.samples_per_second * r.seconds;
    o["train_seconds"] = secs;
    o["train_samples_per_second"] = secs > 0 ? samples / secs : NAN;
  }
  if (comp.pruning()) {
    o["pruning_method"] = comp.pruner()->options().method;
    o["sparsity"] = comp.sparsity();
    int64_t kept = 0, units = 0, kept_units = 0;
    for (const auto& l : comp.pruner()->layer_stats())
      kept += l.kept, units += l.units, kept_units += l.kept_units;
    o["remaining_weights"] = kept;
    o["units"] = units;
    o["remaining_units"] = kept_units;
  }
  if (comp.active()) {
    o["ebops"] = comp.ebops();
    o["ebops_uniform_8bit"] = comp.uniform_ebops(8);
    const auto& dc = comp.deploy_check();
    if (dc.done) {
      o["deployed_test_samples"] = dc.samples;
      o["deployed_mismatches"] = dc.mismatches;
      o["deployed_accumulator_bits"] = dc.accumulator_bits;
      o["deployed_check_seconds"] = dc.check_seconds;
    } else {
      o["deployed_refused"] = dc.refused;
    }
    o["calibration_seconds"] = dc.calibration_seconds;
    o["mean_weight_bits"] = comp.mean_bits(false);
    o["mean_input_bits"] = comp.mean_bits(true);
  }
  for (const auto& [k, v] : extra.items()) o[k] = v;
  o["wall_seconds"] = wall;
  // Names from the data (class names) are checked UTF-8 on load; replace keeps a stray byte from throwing.
  return o.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace kiln
