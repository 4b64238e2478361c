#include "engine/optim/optimizer.h"

#include <cmath>

namespace kiln::optim {

OptimizerOptions parse_optimizer(const Config& c) {
  OptimizerOptions o;
  c.check_unused({"type", "learning_rate", "momentum", "nesterov", "beta_1", "beta_2", "epsilon", "weight_decay",
                  "clip_norm", "clip_value"});
  o.type = c.get<std::string>("type", o.type);
  if (o.type != "sgd" && o.type != "adam" && o.type != "adamw")
    c.fail("type", "unknown optimizer '" + o.type + "' (valid: sgd, adam, adamw)");
  o.learning_rate = c.get<float>("learning_rate", o.learning_rate);
  o.momentum = c.get<float>("momentum", o.momentum);
  o.nesterov = c.get<bool>("nesterov", o.nesterov);
  o.beta_1 = c.get<float>("beta_1", o.beta_1);
  o.beta_2 = c.get<float>("beta_2", o.beta_2);
  o.epsilon = c.get<float>("epsilon", o.epsilon);
  o.weight_decay = c.get<float>("weight_decay", o.weight_decay);
  o.clip_norm = c.get<float>("clip_norm", o.clip_norm);
  o.clip_value = c.get<float>("clip_value", o.clip_value);
  auto positive = [&](const char* key, float v, bool allow_zero) {
    if (!(allow_zero ? v >= 0.f : v > 0.f) || !std::isfinite(v))
      c.fail(key, std::string(key) + " must be " + (allow_zero ? ">= 0" : "> 0") + ", got " + std::to_string(v));
  };
  positive("learning_rate", o.learning_rate, false);
  positive("epsilon", o.epsilon, false);
  positive("momentum", o.momentum, true);
  positive("weight_decay", o.weight_decay, true);
  positive("clip_norm", o.clip_norm, true);
  positive("clip_value", o.clip_value, true);
  if (!(o.beta_1 >= 0.f && o.beta_1 < 1.f)) c.fail("beta_1", "beta_1 must be in [0, 1)");
  if (!(o.beta_2 >= 0.f && o.beta_2 < 1.f)) c.fail("beta_2", "beta_2 must be in [0, 1)");
  if (o.nesterov && o.momentum == 0.f) c.fail("nesterov", "nesterov needs momentum > 0");
  return o;
}

void Optimizer::zero_grad(const std::vector<Parameter*>& params) {
  for (Parameter* p : params)
    if (!p->var.grad().empty()) p->var.grad().zero();
}

Tensor& Optimizer::slot(size_t i, size_t k, const Shape& shape) {
  Tensor& t = slots_[k][i];
  if (t.shape() != shape) t = Tensor(shape);
  return t;
}

void Optimizer::step(const std::vector<Parameter*>& params, float lr) {
  if (names_.empty()) {
    for (Parameter* p : params) names_.push_back(p->name);
    slots_.assign(slot_names().size(), std::vector<Tensor>(params.size()));
  }
  KILN_CHECK(names_.size() == params.size(), "optimizer used with a different parameter list");
  ++t_;
  float scale = 1.f;
  if (opt_.clip_norm > 0.f) {
    double sq = 0;
    for (Parameter* p : params)
      if (!p->var.grad().empty()) sq += p->var.grad().vec().squaredNorm();
    double norm = std::sqrt(sq);
    if (norm > opt_.clip_norm) scale = static_cast<float>(opt_.clip_norm / norm);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    Parameter& p = *params[i];
    Tensor& g = p.var.grad();
    if (g.empty()) continue;  // unused in this forward pass
    if (scale != 1.f) g.vec() *= scale;
    if (opt_.clip_value > 0.f) g.vec() = g.vec().cwiseMax(-opt_.clip_value).cwiseMin(opt_.clip_value);
    if (!p.mask.empty()) g.vec().array() *= p.mask.vec().array();
    if (p.decay && opt_.weight_decay > 0.f && opt_.type != "adamw") g.vec() += opt_.weight_decay * p.var.value().vec();
    update(i, p, g, lr);
    if (!p.mask.empty()) p.var.value().vec().array() *= p.mask.vec().array();
  }
}

std::map<std::string, Tensor> Optimizer::state() const {
  std::map<std::string, Tensor> s;
  s["step"] = Tensor(Shape{1}, {static_cast<float>(t_)});
  std::vector<std::string> sn = slot_names();
  for (size_t k = 0; k < slots_.size(); ++k)
    for (size_t i = 0; i < names_.size(); ++i)
      if (!slots_[k][i].empty()) s[names_[i] + "/" + sn[k]] = slots_[k][i];
  return s;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& s, const std::vector<Parameter*>& params) {
  names_.clear();
  for (Parameter* p : params) names_.push_back(p->name);
  std::vector<std::string> sn = slot_names();
  slots_.assign(sn.size(), std::vector<Tensor>(params.size()));
  auto it = s.find("step");
  t_ = it == s.end() ? 0 : static_cast<int64_t>(it->second[0]);
  for (size_t k = 0; k < sn.size(); ++k)
    for (size_t i = 0; i < params.size(); ++i) {
      auto f = s.find(names_[i] + "/" + sn[k]);
      if (f == s.end()) continue;
      if (f->second.shape() != params[i]->var.shape())
        throw InputError("optimizer state '" + f->first + "' has shape " + shape_str(f->second.shape()) +
                         " but the parameter has " + shape_str(params[i]->var.shape()));
      slots_[k][i] = f->second;
    }
}

namespace {

// PyTorch SGD: buf = momentum * buf + g; nesterov: g + momentum * buf; w -= lr * update.
class Sgd : public Optimizer {
 public:
  using Optimizer::Optimizer;

 protected:
  std::vector<std::string> slot_names() const override { return {"momentum"}; }
  void update(size_t i, Parameter& p, const Tensor& g, float lr) override {
    auto w = p.var.value().vec();
    if (opt_.momentum == 0.f) {
      w -= lr * g.vec();
      return;
    }
    Tensor& buf = slot(i, 0, g.shape());
    buf.vec() = opt_.momentum * buf.vec() + g.vec();
    if (opt_.nesterov) w -= lr * (g.vec() + opt_.momentum * buf.vec());
    else w -= lr * buf.vec();
  }
};

// Adam / AdamW with bias correction: w -= lr * mhat / (sqrt(vhat) + eps); AdamW first w *= 1 - lr * wd.
class Adam : public Optimizer {
 public:
  using Optimizer::Optimizer;

 protected:
  std::vector<std::string> slot_names() const override { return {"m", "v"}; }
  void update(size_t i, Parameter& p, const Tensor& g, float lr) override {
    Tensor& m = slot(i, 0, g.shape());
    Tensor& v = slot(i, 1, g.shape());
    float b1 = opt_.beta_1, b2 = opt_.beta_2;
    float c1 = 1.f - static_cast<float>(std::pow(b1, static_cast<double>(t_)));
    float c2 = 1.f - static_cast<float>(std::pow(b2, static_cast<double>(t_)));
    float step = lr / c1, inv_sqrt_c2 = 1.f / std::sqrt(c2), eps = opt_.epsilon;
    float* w = p.var.value().data();
    const float* gp = g.data();
    float* mp = m.data();
    float* vp = v.data();
    int64_t n = g.size();
    if (opt_.type == "adamw" && p.decay && opt_.weight_decay > 0.f) p.var.value().vec() *= 1.f - lr * opt_.weight_decay;
    for (int64_t j = 0; j < n; ++j) {
      mp[j] = b1 * mp[j] + (1.f - b1) * gp[j];
      vp[j] = b2 * vp[j] + (1.f - b2) * gp[j] * gp[j];
      w[j] -= step * mp[j] / (std::sqrt(vp[j]) * inv_sqrt_c2 + eps);
    }
  }
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& o) {
  if (o.type == "sgd") return std::make_unique<Sgd>(o);
  if (o.type == "adam" || o.type == "adamw") return std::make_unique<Adam>(o);
  throw InputError("unknown optimizer '" + o.type + "' (valid: sgd, adam, adamw)");
}

}  // namespace kiln::optim
