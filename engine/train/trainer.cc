#include "engine/train/trainer.h"

#include <omp.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <chrono>
#include <cmath>

#include "engine/data/batches.h"
#include "engine/metrics.h"
#include "engine/ops.h"

namespace kiln::train {

void set_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
  // Flush subnormals to zero (FTZ) and read them as zero (DAZ) in every thread that trains. Penalties that
  // pull weights toward 0 (mdmm, cs) leave many at 1e-39..1e-45, where each multiply takes a microcode
  // assist: an epoch became 10x slower. No trained quantity lives there (the finest fixed-point step is
  // 2^-24), and PyTorch offers the same switch (torch.set_flush_denormal).
#if defined(__SSE__)
#pragma omp parallel num_threads(n)
  _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ (bit 15) | DAZ (bit 6)
#endif
}

namespace {

// Targets for losses that compare outputs to numbers, from class labels when the task is classification.
Tensor class_targets(const std::vector<int>& labels, int64_t outputs, float neg) {
  int64_t n = static_cast<int64_t>(labels.size());
  if (outputs == 1) {
    Tensor t({n, 1});
    for (int64_t i = 0; i < n; ++i) {
      if (labels[static_cast<size_t>(i)] > 1)
        throw InputError("a single-output model needs two classes, found label " +
                         std::to_string(labels[static_cast<size_t>(i)]));
      t[i] = labels[static_cast<size_t>(i)] == 1 ? 1.f : neg;
    }
    return t;
  }
  Tensor t({n, outputs}, neg);
  for (int64_t i = 0; i < n; ++i) {
    int y = labels[static_cast<size_t>(i)];
    if (y < 0 || y >= outputs)
      throw ShapeError("label " + std::to_string(y) + " but the model has " + std::to_string(outputs) +
                       " outputs");
    t[i * outputs + y] = 1.f;
  }
  return t;
}

double mean_finite(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / n : NAN;
}

uint64_t mix(uint64_t seed, uint64_t epoch, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (epoch + 1) + 0xBF58476D1CE4E5B9ULL * stream;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

Var compute_loss(const TrainOptions& o, const Var& out, const std::vector<int>& labels,
                 const Tensor& targets) {
  int64_t outputs = out.shape().back();
  bool cls = !labels.empty();
  if (o.loss == "cross_entropy") {
    if (!cls) throw InputError("loss 'cross_entropy' needs class labels; use 'mse' for regression");
    if (outputs < 2)
      throw ShapeError("loss 'cross_entropy' needs at least 2 outputs, the model has " +
                       std::to_string(outputs) + "; use binary_cross_entropy for one");
    return softmax_cross_entropy(out, labels, o.label_smoothing);
  }
  if (o.loss == "binary_cross_entropy") {
    if (cls) return binary_cross_entropy(out, class_targets(labels, outputs, 0.f));
    return binary_cross_entropy(out, targets);
  }
  Tensor t = cls ? class_targets(labels, outputs, o.loss == "l2_margin" ? -1.f : 0.f) : targets;
  if (t.size() != out.size())
    throw ShapeError("loss '" + o.loss + "': model output " + shape_str(out.shape()) + " vs targets " +
                     shape_str(t.shape()));
  if (o.loss == "mse") return mse_loss(out, t);
  if (o.loss == "mae") return mean_all(abs(sub(out, Var(t.reshaped(out.shape())))));
  return l2_margin_loss(out, t);
}

EvalResult evaluate(nn::Model& m, const data::Dataset& d, const TrainOptions& o, int64_t batch_size) {
  EvalResult r;
  if (d.size() == 0) return r;
  NoGradGuard ng;
  nn::Context ctx;
  data::BatchIterator it(d, batch_size, false, 0);
  it.start_epoch();
  Tensor x, targets;
  std::vector<int> labels;
  int64_t outputs = shape_numel(m.output_shape());
  r.outputs = Tensor({d.size(), outputs});
  int64_t at = 0;
  double loss_sum = 0;
  while (it.next(x, labels, targets)) {
    Var out = m.forward(Var(x), ctx);
    int64_t b = x.dim(0);
    loss_sum += compute_loss(o, out, labels, targets).value()[0] * static_cast<double>(b);
    std::copy_n(out.value().data(), out.size(), r.outputs.data() + at * outputs);
    at += b;
  }
  r.loss = loss_sum / static_cast<double>(d.size());
  if (!d.labels.empty()) {
    r.accuracy = accuracy(r.outputs, d.labels);
    r.auc_per_class = roc_auc_one_vs_rest(r.outputs, d.labels);
    r.auc = mean_finite(r.auc_per_class);
  } else {
    r.mse = mse(r.outputs, d.targets);
  }
  return r;
}

std::map<std::string, Tensor> Trainer::best_state() const { return best_; }

void Trainer::set_best_state(const std::map<std::string, Tensor>& s) {
  for (nn::Parameter* p : m_.parameters())
    if (!s.empty() && (!s.count(p->name) || s.at(p->name).shape() != p->var.shape()))
      throw InputError("the saved best epoch has no parameter '" + p->name + "' of shape " +
                       shape_str(p->var.shape()));
  best_ = s;
}

Trainer::Trainer(nn::Model& m, TrainOptions o)
    : m_(m), o_(std::move(o)), opt_(optim::make_optimizer(o_.optimizer)) {}

double Trainer::monitored(const EpochRecord& r) const {
  const std::string& k = o_.early_stopping.monitor;
  if (k == "val_accuracy") return -r.val_accuracy;
  if (k == "val_auc") return -r.val_auc;
  if (k == "val_mse") return r.val_mse;
  return r.val_loss;
}

void Trainer::fit(const data::Dataset& train, const data::Dataset& val, const BatchFn& on_batch,
                  const EpochFn& on_epoch) {
  if (train.size() == 0) throw InputError("the training split is empty");
  std::vector<nn::Parameter*> params = m_.parameters();
  std::vector<nn::Buffer> buffers = m_.buffers();
  for (auto& t : terms_) t->resume(history_);
  bool early = o_.early_stopping.patience > 0 && val.size() > 0;
  // Early-stopping state from the history (a resumed run continues the count where it stopped).
  double best = INFINITY;
  int since_best = 0;
  for (const auto& r : early ? history_ : std::vector<EpochRecord>{}) {
    if (double v = monitored(r); v < best - o_.early_stopping.min_delta) {
      best = v, best_epoch_ = r.epoch, since_best = 0;
    } else {
      ++since_best;
    }
  }
  // A run resumed from the checkpoint of the epoch that ended it stops where the uninterrupted run did.
  if (early && since_best >= o_.early_stopping.patience) stopped_early_ = true;
  int64_t spe = (train.size() + o_.batch_size - 1) / o_.batch_size;
  Tensor x, targets;
  std::vector<int> labels;
  for (int epoch = static_cast<int>(history_.size()) + 1; epoch <= o_.epochs && !stopped_early_; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    data::BatchIterator it(train, o_.batch_size, true, mix(o_.seed, static_cast<uint64_t>(epoch), 1));
    it.start_epoch();
    std::mt19937_64 rng(mix(o_.seed, static_cast<uint64_t>(epoch), 2));
    std::vector<Var> aux;  // loss terms added by layers (a VAE's KL divergence)
    nn::Context ctx{true, &rng, &aux};
    if (!capture_.empty()) ctx.capture = &capture_;
    double loss_sum = 0, correct = 0;
    int64_t seen = 0, batch = 0;
    double lr = 0;
    for (auto& t : terms_) t->start_epoch(epoch);
    while (it.next(x, labels, targets)) {
      int64_t step = opt_->steps();
      lr = optim::scheduled_lr(o_.schedule, o_.optimizer.learning_rate, step, spe);
      lr_ = lr;
      aux.clear();
      ctx.captured.clear();
      Var out = m_.forward(Var(x), ctx);
      Var loss =
          task_loss_ ? task_loss_(out, x, labels, targets, ctx) : compute_loss(o_, out, labels, targets);
      Var total = loss;
      for (const Var& a : aux) total = add(total, a);
      for (auto& t : terms_)
        if (Var v = t->loss(); v.defined()) total = add(total, v);
      const int64_t b = x.dim(0);
      const double l = loss.value()[0];
      // A non-finite loss or gradient stops the run before the step: the model in memory (and the last
      // checkpoint) stays finite, and the message says where the values broke.
      if (!std::isfinite(l) || !std::isfinite(total.value()[0])) {
        std::string at = m_.nonfinite_origin(x, ctx);
        throw InputError(std::string("training diverged: loss is ") +
                         (std::isfinite(l) ? "finite but an added loss term is not"
                          : std::isnan(l)  ? "nan"
                                           : "inf") +
                         " at epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch + 1) +
                         (at.empty() ? " (the model's outputs are finite; the loss overflowed)"
                                     : ", first non-finite values in " + at) +
                         "; try a lower learning_rate or clip_norm");
      }
      optim::Optimizer::zero_grad(params);
      backward(total);
      for (nn::Parameter* p : params)
        if (!p->var.grad().empty() && !p->var.grad().vec().allFinite())
          throw InputError("training diverged: the gradient of '" + p->name + "' is not finite at epoch " +
                           std::to_string(epoch) + ", batch " + std::to_string(batch + 1) +
                           "; try a lower learning_rate or clip_norm");
      opt_->step(params, static_cast<float>(lr));
      for (auto& t : terms_) t->after_step();
      loss_sum += l * static_cast<double>(b);
      if (!labels.empty()) correct += accuracy(out.value(), labels) * static_cast<double>(b);
      seen += b;
      ++batch;
      if (on_batch)
        on_batch({epoch, batch, spe, seen, loss_sum / static_cast<double>(seen),
                  labels.empty() ? NAN : correct / static_cast<double>(seen)});
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EpochRecord r;
    r.epoch = epoch;
    r.lr = lr;
    r.train_loss = loss_sum / static_cast<double>(seen);
    r.train_accuracy = train.labels.empty() ? NAN : correct / static_cast<double>(seen);
    r.seconds = secs;
    r.samples_per_second = static_cast<double>(seen) / std::max(secs, 1e-9);
    if (val.size() > 0) {
      EvalResult v = evaluate(m_, val, o_);
      r.val_loss = v.loss, r.val_accuracy = v.accuracy, r.val_auc = v.auc, r.val_mse = v.mse;
    }
    for (auto& t : terms_)
      for (auto& kv : t->stats()) r.extra.push_back(kv);
    history_.push_back(r);
    for (auto& t : terms_) t->end_epoch(r);
    if (early) {
      double cur = monitored(r);
      if (cur < best - o_.early_stopping.min_delta) {
        best = cur;
        best_epoch_ = epoch;
        since_best = 0;
        if (o_.early_stopping.restore_best) {
          best_.clear();
          for (auto* p : params) best_[p->name] = p->var.value();
          for (auto& b : buffers) best_[b.name] = *b.tensor;
        }
      } else if (++since_best >= o_.early_stopping.patience) {
        stopped_early_ = true;  // ends the loop
      }
    }
    // After the early-stopping update: a checkpoint written here resumes exactly where this epoch left off.
    if (on_epoch) on_epoch(r);
  }
  if (early && o_.early_stopping.restore_best && !best_.empty()) {
    for (auto* p : params) p->var.value() = best_.at(p->name);
    for (auto& b : buffers) *b.tensor = best_.at(b.name);
  }
}

}  // namespace kiln::train
