#include "engine/train/distill.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/train/anomaly.h"

namespace kiln::train {

DistillOptions parse_distillation(const Config& c) {
  DistillOptions o;
  if (!c.defined()) return o;
  c.check_unused({"teacher", "mode", "alpha", "temperature", "score", "latent_layer", "score_scale",
                  "score_precision", "outlier_exposure", "features"});
  o.teacher = c.require<std::string>("teacher");
  o.where = c.location("teacher");  // messages are mostly about the teacher
  o.mode = c.get<std::string>("mode", o.mode);
  if (o.mode != "soft" && o.mode != "regression" && o.mode != "features" && o.mode != "colearn")
    c.fail("mode",
           "distillation: unknown mode '" + o.mode + "' (valid: soft, regression, features, colearn)");
  o.alpha = c.get<double>("alpha", o.alpha);
  if (!(o.alpha >= 0 && o.alpha <= 1))
    c.fail("alpha", "distillation: alpha must be in [0, 1], got " + std::to_string(o.alpha));
  o.temperature = c.get<double>("temperature", o.temperature);
  if (!(o.temperature > 0 && o.temperature <= 100))
    c.fail("temperature",
           "distillation: temperature must be in (0, 100], got " + std::to_string(o.temperature));
  auto only = [&](const char* key, const char* mode) {
    if (c.has(key) && o.mode != mode)
      c.fail(key,
             std::string("distillation: '") + key + "' belongs to mode " + mode + ", the mode is " + o.mode);
  };
  for (const char* k : {"score", "latent_layer", "score_scale", "score_precision", "outlier_exposure"})
    only(k, "regression");
  only("features", "features");
  o.score = c.get<std::string>("score", o.score);
  if (std::find(kAnomalyScores.begin(), kAnomalyScores.end(), o.score) == kAnomalyScores.end())
    c.fail("score", "distillation: unknown score '" + o.score + "' (valid: mse, log_mse, latent, output)");
  o.latent_layer = c.get<std::string>("latent_layer", "");
  if (o.score == "latent" && o.latent_layer.empty())
    c.fail("score", "distillation: score 'latent' needs latent_layer (the teacher's layer of latent means)");
  o.score_scale = c.get<double>("score_scale", 1.0);
  if (!(std::isfinite(o.score_scale) && o.score_scale > 0))
    c.fail("score_scale", "distillation: score_scale must be > 0 (a negative scale would flip the score)");
  if (c.has("score_precision")) {
    Config p = c.child("score_precision");
    p.check_unused({"bits", "integer"});
    o.score_bits = p.require<int>("bits");
    o.score_integer_bits = p.require<int>("integer");
    if (o.score_bits < 2 || o.score_bits > 32 || o.score_integer_bits < 1 ||
        o.score_integer_bits > o.score_bits)
      p.fail("bits", "distillation: score_precision needs 2 <= bits <= 32 and 1 <= integer <= bits, got " +
                         std::to_string(o.score_bits) + ", " + std::to_string(o.score_integer_bits));
  }
  if (c.has("outlier_exposure")) {
    Config e = c.child("outlier_exposure");
    e.check_unused({"fraction", "noise", "shift"});
    o.outlier_fraction = e.get<double>("fraction", 0.2);
    o.outlier_shift = e.get<int>("shift", 0);
    o.outlier_noise = e.get<double>("noise", o.outlier_shift > 0 ? 0.0 : o.outlier_noise);
    if (o.outlier_shift < 0 || o.outlier_shift > 1000)
      e.fail("shift",
             "outlier_exposure: shift must be in [0, 1000] pixels, got " + std::to_string(o.outlier_shift));
    if (!(o.outlier_fraction >= 0 && o.outlier_fraction <= 10))
      e.fail("fraction", "outlier_exposure: fraction must be in [0, 10] (extra samples per training sample)");
    if (!(o.outlier_noise >= 0 && std::isfinite(o.outlier_noise)) ||
        (o.outlier_noise == 0 && o.outlier_shift == 0))
      e.fail("noise",
             "outlier_exposure: noise must be > 0 (the standard deviation added to each feature), or "
             "0 with a shift");
  }
  if (o.mode == "features") {
    for (const Config& f : c.children("features")) {
      f.check_unused({"student", "teacher"});
      o.features.emplace_back(f.require<std::string>("student"), f.require<std::string>("teacher"));
    }
    if (o.features.empty())
      c.fail("mode", "distillation: mode features needs features: [{student: L, teacher: L}, ...]");
  }
  return o;
}

Distiller::Distiller(DistillOptions o, const data::Standardizer& student_st, uint64_t seed)
    : o_(std::move(o)), student_st_(student_st), rng_(seed ^ 0xD157111ULL) {
  try {
    ck_ = load_checkpoint(o_.teacher);
    teacher_ = restore_model(ck_);
  } catch (const InputError& e) {
    throw InputError(o_.where + ": distillation teacher: " + e.what());
  }
}

Tensor Distiller::teacher_input(const Tensor& x) const {
  const auto& ts = ck_.standardizer;
  Tensor t = x;
  if (student_st_.empty() && ts.empty()) return t;
  const int64_t d = x.ndim() && x.dim(0) ? x.size() / x.dim(0) : 0;
  if ((!student_st_.empty() && static_cast<int64_t>(student_st_.mean.size()) != d) ||
      (!ts.empty() && static_cast<int64_t>(ts.mean.size()) != d))
    throw InputError(o_.teacher + ": the teacher's standardisation has " + std::to_string(ts.mean.size()) +
                     " features, the data has " + std::to_string(d));
  float* p = t.data();
  for (int64_t i = 0; i < t.size(); ++i) {
    const size_t j = static_cast<size_t>(i % d);
    float raw = student_st_.empty() ? p[i] : p[i] / student_st_.scale[j] + student_st_.mean[j];
    p[i] = ts.empty() ? raw : (raw - ts.mean[j]) * ts.scale[j];
  }
  return t;
}

Tensor Distiller::teacher_logits(const Tensor& x) { return teacher_->predict(teacher_input(x)); }

double Distiller::to_target(double s) const {
  double v = s * o_.score_scale;
  if (o_.score_bits > 0) {  // ap_fixed<bits, integer, AP_RND, AP_SAT>
    const int f = o_.score_bits - o_.score_integer_bits;
    const double step = std::ldexp(1.0, -f), hi = std::ldexp(1.0, o_.score_integer_bits - 1) - step,
                 lo = -std::ldexp(1.0, o_.score_integer_bits - 1);
    v = std::clamp(std::floor(v / step + 0.5) * step, lo, hi);
  }
  return v;
}

std::vector<double> Distiller::teacher_scores(const Tensor& x, std::vector<double>* raw) {
  std::vector<double> s = anomaly_scores(*teacher_, teacher_input(x), o_.score, o_.latent_layer);
  if (raw) *raw = s;
  for (double& v : s) v = to_target(v);
  return s;
}

void Distiller::prepare(data::Split& s, const TrainOptions& o) {
  if (s.train.size() == 0) throw InputError("the training split is empty");
  Shape sample(s.train.x.shape().begin() + 1, s.train.x.shape().end());
  // Same shape is not enough: the teacher must read the same columns, and (soft, colearn) name the same
  // classes in the same order, or its outputs would be silently misaligned.
  if (!ck_.feature_names.empty() && !s.train.feature_names.empty() &&
      ck_.feature_names != s.train.feature_names)
    throw InputError(o_.where + ": the teacher " + o_.teacher + " reads the features (" +
                     join(ck_.feature_names) + "), the data gives (" + join(s.train.feature_names) + ")");
  if ((o_.mode == "soft" || o_.mode == "colearn") && !ck_.class_names.empty() &&
      !s.train.class_names.empty() && ck_.class_names != s.train.class_names)
    throw InputError(o_.where + ": the teacher " + o_.teacher + " was trained on the classes (" +
                     join(ck_.class_names) + "), the data has (" + join(s.train.class_names) + ")");
  if (sample != ck_.input_shape)
    throw InputError(o_.where + ": the teacher " + o_.teacher + " takes " + shape_str(ck_.input_shape) +
                     ", the data gives " + shape_str(sample));
  if (o_.mode == "regression") {
    AnomalyOptions a;
    a.score = o_.score, a.latent_layer = o_.latent_layer, a.where = o_.where;
    check_score(*teacher_, a);
    if (o_.outlier_fraction > 0) {  // noisy or moved copies of training samples, scored by the teacher below
      const int64_t n = s.train.size(), extra = static_cast<int64_t>(std::llround(o_.outlier_fraction * n));
      const int64_t per = s.train.sample_size();
      Shape sh = s.train.x.shape();
      sh[0] = n + extra;
      Tensor x(sh);
      std::copy_n(s.train.x.data(), n * per, x.data());
      std::uniform_int_distribution<int64_t> pick(0, n - 1);
      std::normal_distribution<float> noise(0.f, static_cast<float>(std::max(o_.outlier_noise, 1e-30)));
      const int shift = o_.outlier_shift;
      if (shift > 0 && !student_st_.empty())  // a moved pixel would be read with another pixel's scaling
        throw InputError(o_.where +
                         ": outlier_exposure shift needs unstandardised images (data: standardize: false)");
      if (shift > 0 && sample.size() != 3)
        throw InputError(o_.where + ": outlier_exposure shift moves images [H, W, C]; the data gives " +
                         shape_str(sample));
      std::uniform_int_distribution<int> move(-shift, shift);
      for (int64_t i = 0; i < extra; ++i) {
        const float* src = s.train.x.data() + pick(rng_) * per;
        float* dst = x.data() + (n + i) * per;
        if (shift > 0) {  // the image moved by (dy, dx), zeros where it came from outside
          const int64_t h = sample[0], w = sample[1], c = sample[2];
          const int dy = move(rng_), dx = move(rng_);
          std::fill(dst, dst + per, 0.f);
          for (int64_t y = 0; y < h; ++y)
            for (int64_t xx = 0; xx < w; ++xx) {
              const int64_t sy = y - dy, sx = xx - dx;
              if (sy >= 0 && sy < h && sx >= 0 && sx < w)
                std::copy_n(src + (sy * w + sx) * c, c, dst + (y * w + xx) * c);
            }
        } else {
          std::copy_n(src, per, dst);
        }
        if (o_.outlier_noise > 0)
          for (int64_t j = 0; j < per; ++j) dst[j] += noise(rng_);
      }
      s.train.x = std::move(x);
      if (!s.train.labels.empty()) s.train.labels.resize(static_cast<size_t>(n + extra), -1);
    }
    for (data::Dataset* d : {&s.train, &s.val, &s.test}) {
      if (d->size() == 0) continue;
      std::vector<double> t = teacher_scores(d->x, d == &s.test ? &test_scores_ : nullptr);
      d->targets = Tensor({d->size(), 1});
      for (int64_t i = 0; i < d->size(); ++i) d->targets[i] = static_cast<float>(t[static_cast<size_t>(i)]);
      d->labels.clear();
      if (d == &s.test) test_targets_ = std::move(t);
    }
    return;
  }
  if (s.train.labels.empty())
    throw InputError(o_.where + ": distillation mode " + o_.mode +
                     " needs class labels (use mode regression for a score)");
  if (shape_numel(teacher_->output_shape()) != s.train.num_classes() && o_.mode != "features")
    throw InputError(o_.where + ": the teacher " + o_.teacher + " has " +
                     std::to_string(shape_numel(teacher_->output_shape())) + " outputs, the data " +
                     std::to_string(s.train.num_classes()) + " classes");
  if (o_.mode == "soft") s.train.targets = teacher_logits(s.train.x);
  (void)o;
}

// alpha * T^2 * KL(softmax(t / T) || softmax(z / T)), batch mean; the T^2 keeps its gradients on the scale
// of the hard loss's (Hinton et al.).
Var soft_distillation_loss(const Var& out, const Tensor& t, double temperature) {
  const int64_t b = out.shape()[0], c = out.size() / b;
  if (t.size() != out.size())
    throw ShapeError("soft distillation: student outputs " + shape_str(out.shape()) + " vs teacher outputs " +
                     shape_str(t.shape()));
  const double inv_t = 1.0 / temperature;
  Tensor p({b, c});
  double neg_entropy = 0;  // sum p log p: makes the value a KL (0 when the student matches), not a CE
  for (int64_t i = 0; i < b; ++i) {
    const float* z = t.data() + i * c;
    double m = *std::max_element(z, z + c), sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp((z[j] - m) * inv_t);
    for (int64_t j = 0; j < c; ++j) {
      double q = std::exp((z[j] - m) * inv_t) / sum;
      p[i * c + j] = static_cast<float>(q);
      if (q > 0) neg_entropy += q * std::log(q);
    }
  }
  Var ls = log_softmax(mul_scalar(reshape(out, {b, c}), static_cast<float>(inv_t)));
  Var ce = mul_scalar(sum_all(mul(Var(p), ls)), -1.f / static_cast<float>(b));
  Var kl = add_scalar(ce, static_cast<float>(neg_entropy / static_cast<double>(b)));
  return mul_scalar(kl, static_cast<float>(temperature * temperature));
}

void Distiller::attach(Trainer& tr, nn::Model& student, const TrainOptions& o,
                       std::shared_ptr<Distiller> self) {
  trainer_ = &tr;
  tr.add_loss_term(std::move(self));
  if (o_.mode == "regression") return;
  if (o_.mode == "features") {
    auto out_of = [](const nn::Model& m, const std::string& name, const std::string& who) -> int64_t {
      for (const auto& r : m.summary())
        if (r.name == name) return shape_numel(r.output);
      std::string names;
      for (const auto& r : m.summary()) names += (names.empty() ? "" : ", ") + r.name;
      throw InputError("distillation features: the " + who + " has no layer '" + name + "' (" + names + ")");
    };
    std::set<std::string> student_capture;
    adapters_.reserve(2 * o_.features.size());
    for (const auto& [sl, tl] : o_.features) {
      const int64_t ds = out_of(student, sl, "student"), dt = out_of(*teacher_, tl, "teacher " + o_.teacher);
      adapters_.push_back({"adapter_" + sl + ".weight",
                           Var(nn::init_tensor({ds, dt}, nn::Init::kGlorotUniform, ds, dt, rng_), true),
                           false,
                           {}});
      adapters_.push_back({"adapter_" + sl + ".bias", Var(Tensor({dt}, 0.f), true), false, {}});
      student_capture.insert(sl);
      teacher_capture_.insert(tl);
    }
    for (auto& p : adapters_) own_params_.push_back(&p);
    tr.set_capture(student_capture);
  }
  if (o_.mode == "colearn") own_params_ = teacher_->parameters();
  own_opt_ = optim::make_optimizer(o.optimizer);
  const double alpha = o_.alpha;
  tr.set_task_loss([this, alpha, o](const Var& out, const Tensor& x, const std::vector<int>& labels,
                                    const Tensor& targets, nn::Context& ctx) -> Var {
    Var hard = compute_loss(o, out, labels, Tensor());
    optim::Optimizer::zero_grad(own_params_);
    Var extra;
    if (o_.mode == "soft") {
      extra = soft_distillation_loss(out, targets, o_.temperature);
    } else if (o_.mode == "colearn") {
      nn::Context tctx{true, ctx.rng};
      Var t = teacher_->forward(Var(teacher_input(x)), tctx);
      teacher_loss_ = compute_loss(o, t, labels, Tensor());
      extra = soft_distillation_loss(
          out, t.value(),
          o_.temperature);  // the student follows the teacher's current outputs (no gradient to it)
    } else {                // features
      nn::Context tctx;
      tctx.capture = &teacher_capture_;
      {
        NoGradGuard ng;
        teacher_->forward(Var(teacher_input(x)), tctx);
      }
      size_t k = 0;
      for (const auto& [sl, tl] : o_.features) {
        const Var& s = ctx.captured.at(sl);
        const Tensor& t = tctx.captured.at(tl).value();
        const int64_t b = s.shape()[0];
        Var mapped = linear(reshape(s, {b, -1}), adapters_[k].var, adapters_[k + 1].var);
        Var l = mse_loss(mapped, t.reshaped({b, t.size() / b}));
        extra = extra.defined() ? add(extra, l) : l;
        k += 2;
      }
    }
    kd_sum_ += extra.value()[0];
    ++steps_;
    return add(mul_scalar(hard, static_cast<float>(1 - alpha)), mul_scalar(extra, static_cast<float>(alpha)));
  });
}

Var Distiller::loss() {
  Var v = teacher_loss_;
  teacher_loss_ = Var();
  if (v.defined()) teacher_loss_sum_ += v.value()[0];
  return v;
}

void Distiller::after_step() {
  if (own_opt_ && !own_params_.empty() && trainer_)
    own_opt_->step(own_params_, static_cast<float>(trainer_->current_lr()));
}

std::vector<std::pair<std::string, double>> Distiller::stats() {
  std::vector<std::pair<std::string, double>> out;
  if (o_.mode == "regression") return out;
  const double n = static_cast<double>(std::max<int64_t>(steps_, 1));
  out.push_back({o_.mode == "features" ? "feature_mse" : "kd_kl", kd_sum_ / n});
  if (o_.mode == "colearn") out.push_back({"teacher_loss", teacher_loss_sum_ / n});
  kd_sum_ = teacher_loss_sum_ = 0;
  steps_ = 0;
  return out;
}

}  // namespace kiln::train
