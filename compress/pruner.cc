#include "compress/pruner.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>

#include "engine/ops.h"

namespace kiln::compress {

namespace {

// The kernel as the forward pass sees it (nn::Slot::kWeight), and the schedule's state as buffers.
class PruneWeight : public nn::Transform {
 public:
  PruneWeight(Pruner* p, size_t i, std::vector<nn::Buffer> own) : p_(p), i_(i), own_(std::move(own)) {}
  Var apply(const Var& w, nn::Context& ctx) override { return p_->weight(i_, w, ctx); }
  void parameters(std::vector<nn::Parameter*>& out) override { p_->method().parameters(i_, out); }
  void buffers(std::vector<nn::Buffer>& out) override {
    out.insert(out.end(), own_.begin(), own_.end());
    p_->method().buffers(i_, out);
  }

 private:
  Pruner* p_;
  size_t i_;
  std::vector<nn::Buffer> own_;
};

// A layer the method does not prune (the output layer under structured pruning) whose weights fed by removed
// units are masked: its mask as a buffer, the weight unchanged (its pruned entries are exact zeros).
class MaskOnly : public nn::Transform {
 public:
  explicit MaskOnly(std::vector<nn::Buffer> own) : own_(std::move(own)) {}
  Var apply(const Var& w, nn::Context& /*ctx*/) override { return w; }
  void buffers(std::vector<nn::Buffer>& out) override { out.insert(out.end(), own_.begin(), own_.end()); }

 private:
  std::vector<nn::Buffer> own_;
};

// Passes x through and shows it to the method (wanda's input norms, activation pruning's active fractions).
class Observe : public nn::Transform {
 public:
  Observe(Pruner* p, size_t i, bool input) : p_(p), i_(i), input_(input) {}
  Var apply(const Var& x, nn::Context& ctx) override {
    if (input_)
      p_->observe_input(i_, x.value(), ctx);
    else
      p_->observe_output(i_, x.value(), ctx);
    return x;
  }

 private:
  Pruner* p_;
  size_t i_;
  bool input_;
};

// Two transforms in one slot: b(a(x)).
class Chain : public nn::Transform {
 public:
  Chain(nn::TransformPtr a, nn::TransformPtr b) : a_(std::move(a)), b_(std::move(b)) {}
  Var apply(const Var& x, nn::Context& ctx) override { return b_->apply(a_->apply(x, ctx), ctx); }
  void parameters(std::vector<nn::Parameter*>& out) override {
    a_->parameters(out);
    b_->parameters(out);
  }
  void buffers(std::vector<nn::Buffer>& out) override {
    a_->buffers(out);
    b_->buffers(out);
  }

 private:
  nn::TransformPtr a_, b_;
};

// Installs t in slot s, before (or after) what is there already.
void chain_into(nn::Layer* l, nn::Slot s, nn::TransformPtr t, bool first, nn::TransformPtr existing) {
  if (!existing)
    l->set_transform(s, std::move(t));
  else if (first)
    l->set_transform(s, std::make_shared<Chain>(std::move(t), std::move(existing)));
  else
    l->set_transform(s, std::make_shared<Chain>(std::move(existing), std::move(t)));
}

}  // namespace

Pruner::Pruner(nn::Model& m, PruningOptions o, QuantizedModel* qm) : m_(m), o_(std::move(o)) {
  method_ = make_prune_method(o_.section, o_.method, o_.common);
  std::set<std::string> disabled(o_.disable_for_layers.begin(), o_.disable_for_layers.end()), seen;
  std::vector<nn::Layer*> all = m.layers();
  for (nn::Layer* l : all) {
    seen.insert(l->name());
    const std::string t = l->type();
    if (disabled.count(l->name())) continue;
    if (t != "dense" && t != "conv1d" && t != "conv2d" && t != "depthwise_conv2d") continue;
    targets_.push_back(make_prune_target(l));
  }
  for (const auto& n : o_.disable_for_layers)
    if (!seen.count(n))
      o_.section.fail("disable_pruning_for_layers",
                      "disable_pruning_for_layers names '" + n + "', which is not a layer of the model");
  if (targets_.empty())
    o_.section.fail("pruning_method", "pruning found no Dense or Conv layer to prune (all disabled?)");
  if (o_.save_weights_epoch >= o_.common.epochs && o_.rewind != "never")
    throw InputError(o_.where + ": save_weights_epoch " + std::to_string(o_.save_weights_epoch) +
                     " is not an epoch of a round (epochs: " + std::to_string(o_.common.epochs) + ")");
  // Structured methods remove whole units; the units of the model's last layer are its outputs (the classes),
  // so that layer is left whole (its weights can still be pruned by an unstructured method).
  if (method_->structured() && !targets_.empty()) {
    nn::Layer* last = nullptr;
    for (nn::Layer* l : all)
      if (l->param("weight")) last = l;
    if (targets_.back().layer == last) {
      passive_.push_back(targets_.back());  // masked only where its inputs are removed units
      targets_.pop_back();
    }
    if (targets_.empty())
      o_.section.fail("pruning_method", "structured pruning found no layer but the output layer to prune");
  }
  method_->attach(&targets_);
  const bool rewinds = o_.rewind != "never";
  if (rewinds) {
    saved_w_.resize(targets_.size());
    saved_b_.resize(targets_.size());
  }
  for (size_t i = 0; i < targets_.size(); ++i) {
    PruneTarget& tg = targets_[i];
    const std::string base = tg.layer->name() + ".weight_prune.";
    std::vector<nn::Buffer> own{{base + "mask", &tg.mask}};
    if (tg.bias) own.push_back({base + "bias_mask", &tg.bias_mask});
    if (rewinds) {
      saved_w_[i] = Tensor(tg.weight->var.shape(), 0.f);
      own.push_back({base + "rewind_weight", &saved_w_[i]});
      if (tg.bias) {
        saved_b_[i] = Tensor(tg.bias->var.shape(), 0.f);
        own.push_back({base + "rewind_bias", &saved_b_[i]});
      }
    }
    if (i == 0) {
      own.push_back({base + "stage", &stage_});
      if (rewinds) own.push_back({base + "rewind_saved", &saved_flag_});
    }
    nn::Layer* l = tg.layer;
    // With HGQ the quantizer is in the slot already: prune the float weight, then quantize (pruning_first),
    // or the reverse. Either way q(0) = 0, so a hard-masked weight deploys as an exact zero.
    chain_into(l, nn::Slot::kWeight, std::make_shared<PruneWeight>(this, i, std::move(own)), o_.pruning_first,
               l->transform_ptr(nn::Slot::kWeight));
    if (method_->wants_inputs())  // the input as it arrives, before an input quantizer
      chain_into(l, nn::Slot::kInput, std::make_shared<Observe>(this, i, true), true,
                 l->transform_ptr(nn::Slot::kInput));
    if (method_->wants_outputs())  // after the activation
      chain_into(l, nn::Slot::kOutput, std::make_shared<Observe>(this, i, false), false,
                 l->transform_ptr(nn::Slot::kOutput));
  }
  for (PruneTarget& tg : passive_) {
    nn::Layer* l = tg.layer;
    chain_into(
        l, nn::Slot::kWeight,
        std::make_shared<MaskOnly>(std::vector<nn::Buffer>{{l->name() + ".weight_prune.mask", &tg.mask}}),
        o_.pruning_first, l->transform_ptr(nn::Slot::kWeight));
  }
  // Quantizers count no bits for pruned weights (and biases of removed units): EBOPs see the pruning.
  if (qm)
    for (const LayerQuant& lq : qm->layers())
      for (PruneTarget* t : all_targets()) {
        PruneTarget& tg = *t;
        if (lq.layer != tg.layer) continue;
        if (lq.weight) lq.weight->set_mask(&tg.weight->mask);
        if (lq.bias && tg.bias) lq.bias->set_mask(&tg.bias->mask);
      }
}

std::vector<PruneTarget*> Pruner::all_targets() {
  std::vector<PruneTarget*> v;
  for (auto& t : targets_) v.push_back(&t);
  for (auto& t : passive_) v.push_back(&t);
  return v;
}

Tensor Pruner::keep(size_t i) {
  if (i >= targets_.size()) return passive_[i - targets_.size()].mask;
  return stage() == kPruning ? method_->keep_mask(i) : targets_[i].mask;
}

void Pruner::propagate_removed_units() {
  std::vector<nn::Layer*> all = m_.layers();
  auto find = [&](nn::Layer* l) -> PruneTarget* {
    for (PruneTarget* t : all_targets())
      if (t->layer == l) return t;
    return nullptr;
  };
  auto zero_preserving = [](const std::string& a) {  // activations with f(0) = 0
    return a == "relu" || a == "linear" || a == "tanh" || a == "leaky_relu" || a == "gelu";
  };
  for (size_t li = 0; li < all.size(); ++li) {
    PruneTarget* t = find(all[li]);
    if (!t || !zero_preserving(t->layer->activation_name())) continue;
    // A unit with no weight and no bias left outputs f(0) = 0 for every input.
    const int64_t units = t->units(), per = t->per_unit();
    std::vector<bool> dead(static_cast<size_t>(units), true);
    const Tensor& w = t->weight->var.value();
    for (int64_t j = 0; j < per; ++j)
      for (int64_t u = 0; u < units; ++u)
        if (w[j * units + u] != 0.f) dead[static_cast<size_t>(u)] = false;
    if (t->bias)
      for (int64_t u = 0; u < units; ++u)
        if (t->bias->var.value()[u] != 0.f) dead[static_cast<size_t>(u)] = false;
    if (std::none_of(dead.begin(), dead.end(), [](bool d) { return d; })) continue;
    // The next layer with weights, through layers that keep zeros zero and channels in place (channels last).
    nn::Layer* next = nullptr;
    for (size_t lj = li + 1; lj < all.size(); ++lj) {
      const std::string ty = all[lj]->type();
      if (ty == "flatten" || ty == "dropout" || ty.find("pool") != std::string::npos) continue;
      if ((ty == "relu" || ty == "leaky_relu" || ty == "tanh" || ty == "gelu") && zero_preserving(ty))
        continue;
      if (ty == "dense" || ty == "conv1d" || ty == "conv2d") next = all[lj];
      break;
    }
    PruneTarget* nt = next ? find(next) : nullptr;
    if (!nt) continue;
    const Shape& ns = nt->weight->var.shape();
    const int64_t in = ns[ns.size() - 2], outs = ns.back(), taps = nt->weight->var.size() / (in * outs);
    if (in % units != 0 || (nt->layer->type() != "dense" && in != units)) continue;
    Tensor& nw = nt->weight->var.value();
    for (int64_t tap = 0; tap < taps; ++tap)
      for (int64_t c = 0; c < in; ++c) {
        if (!dead[static_cast<size_t>(c % units)]) continue;
        for (int64_t o = 0; o < outs; ++o) {
          const int64_t at = (tap * in + c) * outs + o;
          nt->mask[at] = 0.f;
          nw[at] = 0.f;
        }
      }
  }
}

void Pruner::sync() {
  const bool on = stage() != kPretraining;
  for (PruneTarget* tp : all_targets()) {
    PruneTarget& t = *tp;
    t.weight->mask = on ? t.mask : Tensor();
    if (t.bias) t.bias->mask = on ? t.bias_mask : Tensor();
  }
}

Var Pruner::weight(size_t i, const Var& w, nn::Context& ctx) {
  switch (stage()) {
    case kPretraining:
      return w;
    case kPruning:
      return method_->weight(i, w, ctx);
    default:
      // Hard masks: the pruned weights are exact zeros (zeroed when the masks hardened, kept at zero by the
      // optimiser), so the weight is used as it is: no multiply on the training path.
      return w;
  }
}

void Pruner::observe_input(size_t i, const Tensor& x, const nn::Context& ctx) {
  if (ctx.training && stage() == kPruning) method_->observe_input(i, x);
}

void Pruner::observe_output(size_t i, const Tensor& y, const nn::Context& ctx) {
  if (ctx.training && stage() == kPruning) method_->observe_output(i, y);
}

void Pruner::save_weights() {
  for (size_t i = 0; i < targets_.size(); ++i) {
    saved_w_[i] = targets_[i].weight->var.value();
    if (targets_[i].bias) saved_b_[i] = targets_[i].bias->var.value();
  }
  saved_flag_[0] = 1.f;
}

void Pruner::rewind_weights() {
  if (saved_flag_[0] == 0.f) return;
  for (size_t i = 0; i < targets_.size(); ++i) {
    PruneTarget& t = targets_[i];
    t.weight->var.value() = saved_w_[i];
    t.weight->var.value().vec().array() *= t.mask.vec().array();  // masks are kept
    if (t.bias) {
      t.bias->var.value() = saved_b_[i];
      t.bias->var.value().vec().array() *= t.bias_mask.vec().array();
    }
  }
}

void Pruner::harden() {
  method_->finalize();
  set_stage(kFinal);
  for (PruneTarget& t : targets_) {
    t.weight->var.value().vec().array() *= t.mask.vec().array();
    if (t.bias) t.bias->var.value().vec().array() *= t.bias_mask.vec().array();
  }
  // The next layer's multiplications by a removed unit's output (always 0) go too: the unit disappears from
  // the generated code and the resource report, and the model computes exactly the same.
  propagate_removed_units();
  sync();
}

void Pruner::finish() {
  if (stage() != kFinal) harden();
}

void Pruner::start_epoch(int epoch) {
  epoch_ = epoch;
  const int P = o_.pretraining_epochs, E = o_.common.epochs, S = o_.common.rounds * E;
  if (epoch <= P) return;
  if (epoch > P + S) {
    finish();  // a run resumed exactly at the stage's end
    return;
  }
  const int se = epoch - P - 1, round = se / E, e = se % E;
  if (stage() == kPretraining) {
    set_stage(kPruning);
    sync();
  }
  if (round == 0 && e == o_.save_weights_epoch && !saved_w_.empty() && saved_flag_[0] == 0.f) save_weights();
  method_->start_epoch(round, e, se);
  sync();
}

Var Pruner::loss() {
  if (stage() == kPruning) {
    sync();  // a method may have pruned inside a forward pass (wanda, activation pruning)
    Var l = method_->loss();
    if (l.defined()) return l;
  }
  return Var(Tensor(Shape{}, 0.f));
}

std::string Pruner::where_epoch(int epoch) const {
  const int P = o_.pretraining_epochs, E = o_.common.epochs, S = o_.common.rounds * E;
  std::ostringstream os;
  os << "epoch " << epoch;
  if (epoch <= P)
    os << " (pretraining)";
  else if (epoch <= P + S)
    os << " (round " << (epoch - P - 1) / E + 1 << " of " << o_.common.rounds << ", epoch "
       << (epoch - P - 1) % E + 1 << " of " << E << ")";
  else
    os << " (fine-tuning)";
  return os.str();
}

void Pruner::end_epoch(const train::EpochRecord& r) {
  const int P = o_.pretraining_epochs, E = o_.common.epochs, S = o_.common.rounds * E;
  const int epoch = r.epoch;
  if (epoch > P && epoch <= P + S && stage() == kPruning) {
    const int se = epoch - P - 1, round = se / E, e = se % E;
    method_->end_epoch(round, e, se);
    sync();
    if (e == E - 1) {
      method_->end_round(round);
      const bool last = round == o_.common.rounds - 1;
      if (last) harden();  // the masks first: a rewind keeps them
      if (o_.rewind == "every-round" || (last && o_.rewind == "post-training-stage")) rewind_weights();
      sync();
    }
  }
  // The collapse guard: a pruned model no better than guessing is not saved as a result.
  if (stage() != kPretraining && classes_ > 1 && o_.collapse_factor > 0 && std::isfinite(r.val_accuracy)) {
    const double chance = 1.0 / classes_, floor = o_.collapse_factor * chance;
    if (r.val_accuracy < floor) {
      std::ostringstream os;
      os << std::setprecision(4) << "pruning collapsed: method '" << o_.method << "' at "
         << where_epoch(epoch) << " with sparsity " << sparsity() << ": validation accuracy "
         << r.val_accuracy << " is below " << o_.collapse_factor << " x chance (" << floor << " for "
         << classes_
         << " classes); lower the sparsity, train more epochs per round, or set collapse_guard: 0 to keep "
            "going";
      throw InputError(os.str());
    }
  }
}

void Pruner::resume(const std::vector<train::EpochRecord>& history) {
  epoch_ = static_cast<int>(history.size());
  sync();
}

}  // namespace kiln::compress
