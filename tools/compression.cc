#include "tools/compression.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <optional>
#include <sstream>

#include "tools/plot.h"

namespace kiln {

bool ParetoFront::add(const ParetoPoint& p, std::vector<int>* removed) {
  if (!std::isfinite(p.ebops) || !std::isfinite(p.val_accuracy)) return false;
  for (const auto& q : points_)
    if (q.ebops <= p.ebops && q.val_accuracy >= p.val_accuracy) return false;
  std::vector<ParetoPoint> kept;
  for (const auto& q : points_) {
    if (p.ebops <= q.ebops && p.val_accuracy >= q.val_accuracy)
      removed->push_back(q.epoch);
    else
      kept.push_back(q);
  }
  kept.push_back(p);
  std::sort(kept.begin(), kept.end(),
            [](const ParetoPoint& a, const ParetoPoint& b) { return a.ebops < b.ebops; });
  points_ = std::move(kept);
  return true;
}

// Per-layer weights before and after pruning (sparsity.svg).
static void write_sparsity_svg(const std::string& path, const std::vector<compress::PruneLayerStats>& layers,
                               const std::string& method) {
  plot::BarChart c{
      "Weights per layer, pruned with " + method, "weights", {}, {{"total", {}}, {"remaining", {}}}};
  for (const auto& l : layers) {
    c.categories.push_back(l.layer);
    c.series[0].second.push_back(static_cast<double>(l.weights));
    c.series[1].second.push_back(static_cast<double>(l.kept));
  }
  plot::write_bar_svg(path, c);
}

CompressionRun::CompressionRun(const Config& c, const Config& training, nn::Model& m, int round_epochs) {
  c.check_unused({"quantization", "pruning", "calibration_samples"});
  calibration_samples_ = c.get<int64_t>("calibration_samples", 0);
  if (calibration_samples_ < 0)
    c.fail("calibration_samples", "calibration_samples must be >= 0 (0: every training sample), got " +
                                      std::to_string(calibration_samples_));
  if (c.has("quantization")) {
    opt_ = compress::parse_quantization(c.child("quantization"));
    if (opt_.enable) qm_ = std::make_shared<compress::QuantizedModel>(m, opt_);
  }
  std::optional<compress::PruningOptions> po;
  if (c.has("pruning")) {
    po = compress::parse_pruning(c.child("pruning"), training);
    if (round_epochs > 0) po->common.epochs = round_epochs;
    if (!po->enable) po.reset();
  }
  if (!po)  // the schedule's keys mean nothing without pruning: say so rather than ignore them
    for (const auto& k : compress::prune_schedule_keys())
      if (training.has(k))
        training.fail(
            k, "training: " + k + " is a key of the pruning schedule; add a compression: pruning: section");
  if (po) {
    if (training.has("early_stopping"))
      training.fail(
          "early_stopping",
          "early_stopping cannot be combined with pruning (it would restore an epoch from before the "
          "masks were final); the schedule's fine_tuning_epochs end the run");
    pruner_ = std::make_shared<compress::Pruner>(m, *po, qm_.get());
  }
}

void CompressionRun::add_to(train::Trainer& tr) const {
  if (qm_) tr.add_loss_term(std::make_shared<compress::HgqLoss>(qm_, opt_));
  if (pruner_) tr.add_loss_term(pruner_);
}

std::string CompressionRun::context() const {
  if (!pruner_) return "";
  std::ostringstream os;
  os << std::setprecision(4) << " (pruning method '" << pruner_->options().method << "', sparsity "
     << pruner_->sparsity() << ")";
  return os.str();
}

static double extra(const train::EpochRecord& r, const std::string& key) {
  for (const auto& kv : r.extra)
    if (kv.first == key) return kv.second;
  return NAN;
}

std::string CompressionRun::progress_stats(const train::EpochRecord& r) {
  double e = extra(r, "ebops"), sp = extra(r, "sparsity");
  std::ostringstream os;
  os << std::setprecision(4);
  if (std::isfinite(sp)) os << "sparsity " << sp << (std::isfinite(e) ? ", " : "");
  if (std::isfinite(e))
    os << "EBOPs " << e << ", mean bits: weights " << extra(r, "mean_weight_bits") << ", inputs "
       << extra(r, "mean_input_bits") << ", beta " << extra(r, "beta");
  return os.str();
}

void CompressionRun::on_epoch(const train::EpochRecord& r, RunDir& rd,
                              const std::function<void(const std::string&)>& save) {
  if (!qm_) return;
  std::vector<int> removed;
  ParetoPoint p{r.epoch, extra(r, "beta"), extra(r, "ebops"), r.val_accuracy};
  std::filesystem::create_directories(rd.path("pareto"));
  if (front_.add(p, &removed)) save(rd.path("pareto/epoch_" + std::to_string(r.epoch) + ".ckpt"));
  for (int e : removed) std::filesystem::remove(rd.path("pareto/epoch_" + std::to_string(e) + ".ckpt"));
}

void CompressionRun::write_sparsity_front(const std::vector<train::EpochRecord>& history, RunDir& rd) const {
  if (!pruner_) return;
  // The same non-dominated filter as the EBOPs front, on density (1 - sparsity, lower is better).
  ParetoFront f;
  std::vector<int> removed;
  const int from = pruner_->options().pretraining_epochs;
  for (const auto& r : history)
    if (r.epoch > from) f.add({r.epoch, NAN, 1.0 - extra(r, "sparsity"), r.val_accuracy}, &removed);
  std::ostringstream csv;
  csv << "epoch,sparsity,val_accuracy\n";
  plot::Series front{"front (validation)", {}, {}, true}, all{"every epoch", {}, {}, true};
  for (const auto& r : history)
    if (r.epoch > from) all.x.push_back(extra(r, "sparsity")), all.y.push_back(r.val_accuracy);
  for (const auto& p : f.points()) {
    csv << p.epoch << ',' << std::setprecision(6) << 1.0 - p.ebops << ',' << p.val_accuracy << '\n';
    front.x.push_back(1.0 - p.ebops);
    front.y.push_back(p.val_accuracy);
  }
  write_text(rd.path("sparsity_front.csv"), csv.str());
  plot::write_svg(rd.path("sparsity_front.svg"), {{"Accuracy vs sparsity (" + pruner_->options().method + ")",
                                                   "sparsity",
                                                   "validation accuracy",
                                                   {all, front}}});
}

void CompressionRun::resume(const std::vector<train::EpochRecord>& history,
                            const std::map<int, std::string>& earlier, RunDir& rd) {
  if (!qm_) return;
  std::vector<int> removed;
  for (const auto& r : history)
    front_.add({r.epoch, extra(r, "beta"), extra(r, "ebops"), r.val_accuracy}, &removed);
  std::filesystem::create_directories(rd.path("pareto"));
  for (const auto& p : front_.points())
    if (auto it = earlier.find(p.epoch); it != earlier.end())
      write_text(rd.path("pareto/epoch_" + std::to_string(p.epoch) + ".ckpt"), it->second);
}

std::string CompressionRun::report() const {
  if (!qm_) return "";
  std::ostringstream os;
  os << std::left << std::setw(16) << "layer" << std::right << std::setw(10) << "params" << std::setw(12)
     << "zero-width" << std::setw(13) << "weight bits" << std::setw(13) << "input bits" << std::setw(14)
     << "EBOPs" << '\n';
  double total = 0;
  int64_t params = 0, zeros = 0;
  for (const auto& l : qm_->layers()) {
    Tensor ib = l.input->bits_value();
    if (l.input2) {  // a residual add: both of its inputs
      Tensor b2 = l.input2->bits_value(), both({ib.size() + b2.size()});
      std::copy_n(ib.data(), ib.size(), both.data());
      std::copy_n(b2.data(), b2.size(), both.data() + ib.size());
      ib = both;
    }
    Tensor wb = l.weight ? l.weight->bits_value() : Tensor({1}, NAN);
    int64_t n = l.weight ? wb.size() : 0, z = l.weight ? (wb.vec().array() == 0.f).count() : 0;
    if (l.bias) {
      Tensor bb = l.bias->bits_value();
      n += bb.size(), z += (bb.vec().array() == 0.f).count();
    }
    double e;
    {
      NoGradGuard ng;
      e = qm_->ebops(l).value()[0];
    }
    total += e, params += n, zeros += z;
    os << std::left << std::setw(16) << l.layer->name() << std::right << std::setw(10) << n << std::setw(12)
       << z << std::setw(13) << std::fixed << std::setprecision(2) << wb.vec().mean() << std::setw(13)
       << ib.vec().mean() << std::setw(14) << std::setprecision(0) << e << '\n';
  }
  os << std::left << std::setw(16) << "total" << std::right << std::setw(10) << params << std::setw(12)
     << zeros << std::setw(26) << "" << std::setw(14) << std::fixed << std::setprecision(0) << total << '\n';
  return os.str();
}

void CompressionRun::finish_pruning(RunDir& rd) {
  if (!pruner_) return;
  pruner_->finish();  // a run that ended inside the pruning stage: the masks harden now
  write_text(rd.path("pruning.txt"), pruner_->report());
  write_sparsity_svg(rd.path("sparsity.svg"), pruner_->layer_stats(), pruner_->options().method);
}

void CompressionRun::calibrate(nn::Model& m, const Tensor& train_x) {
  if (!qm_) return;
  const auto t0 = std::chrono::steady_clock::now();
  deploy_ = DeployCheck();
  deploy_.calibration_samples = train_x.dim(0);
  if (calibration_samples_ > 0 && calibration_samples_ < train_x.dim(0)) {  // the first rows (shuffled split)
    Shape s = train_x.shape();
    s[0] = calibration_samples_;
    Tensor part(s);
    std::copy_n(train_x.data(), part.size(), part.data());
    deploy_.calibration_samples = calibration_samples_;
    qm_->calibrate(m, part);
  } else {
    qm_->calibrate(m, train_x);
  }
  deploy_.calibration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string CompressionRun::check_deployment(nn::Model& m, const Tensor& test_x, const Tensor* test_outputs) {
  if (!qm_) return "";
  const auto t1 = std::chrono::steady_clock::now();
  deploy_.done = false, deploy_.refused.clear(), deploy_.mismatches = 0;
  try {
    compress::DeployedModel d = compress::DeployedModel::freeze(m, *qm_);
    std::vector<double> dep = d.forward(test_x);
    // The quantized forward's outputs: the caller's when it already computed them on test_x (the test
    // evaluation), else here, batched (a conv model's whole test split at once takes gigabytes).
    Tensor computed = test_outputs ? Tensor() : m.predict(test_x, "", 128);
    const Tensor& y = test_outputs ? *test_outputs : computed;
    KILN_CHECK(y.size() == static_cast<int64_t>(dep.size()),
               "deployed check: " + std::to_string(dep.size()) + " deployed outputs for " +
                   std::to_string(y.size()) + " of the quantized forward");
    deploy_.check_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    deploy_.done = true;
    deploy_.samples = test_x.dim(0);
    deploy_.accumulator_bits = d.max_accumulator_bits();
    for (int64_t j = 0; j < y.size(); ++j)
      deploy_.mismatches += static_cast<double>(y[j]) != dep[static_cast<size_t>(j)];
    return d.describe();
  } catch (const InputError& e) {
    deploy_.refused = e.what();
  }
  return "";
}

void CompressionRun::finish(nn::Model& m, const Tensor& test_x, const Tensor* test_outputs, RunDir& rd) {
  if (!qm_) return;
  std::string described = check_deployment(m, test_x, test_outputs);
  if (deploy_.done) write_text(rd.path("deployed.txt"), described);
  std::ostringstream csv;
  csv << "epoch,beta,ebops,val_accuracy\n";
  plot::Series front{"Pareto front (validation)", {}, {}, true};
  for (const auto& p : front_.points()) {
    csv << p.epoch << ',' << std::setprecision(6) << p.beta << ',' << std::setprecision(10) << p.ebops << ','
        << std::setprecision(6) << p.val_accuracy << '\n';
    front.x.push_back(p.ebops);
    front.y.push_back(p.val_accuracy);
  }
  write_text(rd.path("pareto.csv"), csv.str());
  plot::write_svg(rd.path("pareto.svg"),
                  {{"Accuracy vs resources", "EBOPs", "validation accuracy", {front}, true}});
  write_text(
      rd.path("quantization.txt"),
      report() + (pruner_ ? "\npruning (" + pruner_->options().method + "):\n" + pruner_->report() : ""));
  // Bit-width histograms, one series per layer: weights, and layer inputs.
  std::vector<plot::Series> ws, is;
  for (const auto& l : qm_->layers()) {
    for (bool input : {false, true}) {
      if (!input && !l.weight) continue;
      std::map<int, double> h;
      for (auto* q : {input ? l.input.get() : l.weight.get(), input ? l.input2.get() : nullptr}) {
        if (!q) continue;
        Tensor b = q->bits_value();
        for (int64_t j = 0; j < b.size(); ++j) h[static_cast<int>(b[j])] += 1;
      }
      plot::Series s{l.layer->name(), {}, {}, true};
      for (const auto& [bits, count] : h) s.x.push_back(bits), s.y.push_back(count);
      (input ? is : ws).push_back(s);
    }
  }
  plot::write_svg(rd.path("bit_widths.svg"),
                  {{"Weight bit widths", "bits (k + i + f)", "weights", ws},
                   {"Input bit widths (per feature)", "bits (k + i + f)", "inputs", is}});
}

}  // namespace kiln
