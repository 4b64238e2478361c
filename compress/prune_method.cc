#include "compress/prune_method.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "engine/check.h"
#include "engine/ops.h"

namespace kiln::compress {

PruneTarget make_prune_target(nn::Layer* l) {
  PruneTarget t;
  t.layer = l;
  t.weight = l->param("weight");
  KILN_CHECK(t.weight != nullptr, "make_prune_target: layer '" + l->name() + "' has no weight to prune");
  t.bias = l->param("bias");
  t.mask = Tensor(t.weight->var.shape(), 1.f);
  if (t.bias) t.bias_mask = Tensor(t.bias->var.shape(), 1.f);
  return t;
}

Var PruneMethod::weight(size_t i, const Var& w, nn::Context& /*ctx*/) {
  return mul(w, Var(targets()[i].mask));
}

Tensor PruneMethod::keep_mask(size_t i) { return targets()[i].mask; }

void PruneMethod::finalize() {
  for (size_t i = 0; i < targets().size(); ++i) {
    PruneTarget& t = targets()[i];
    t.mask = keep_mask(i);
    t.weight->var.value().vec().array() *= t.mask.vec().array();
  }
}

namespace {

struct Entry {
  const char* name;
  PruneMethodPtr (*make)(const Config&, const PruneCommon&);
  std::vector<std::string> keys;
};

const std::vector<Entry>& registry() {
  static const std::vector<Entry> r{
      {"magnitude", make_magnitude, {"global_pruning", "initial_sparsity", "ramp_epochs", "exponent"}},
      {"cs", make_cs, {"final_temp", "threshold_init", "threshold_decay"}},
      {"dst", make_dst, {"alpha", "max_pruning_pct", "threshold_init", "threshold_type"}},
      {"pdp", make_pdp, {"epsilon", "temperature", "structured_pruning", "global_pruning"}},
      {"wanda", make_wanda, {"M", "N", "t_delta", "t_start_collecting_batch", "calculate_pruning_budget"}},
      {"autosparse",
       make_autosparse,
       {"alpha", "alpha_reset_epoch", "autotune_epochs", "backward_sparsity", "threshold_init",
        "threshold_type"}},
      {"activation_pruning", make_activation_pruning, {"threshold", "t_delta", "t_start_collecting_batch"}},
      {"mdmm",
       make_mdmm,
       {"constraint_type", "target_value", "metric_type", "target_sparsity", "rf", "epsilon", "scale",
        "damping", "use_grad", "l0_mode", "scale_mode"}},
  };
  return r;
}

}  // namespace

std::vector<std::string> prune_method_names() {
  std::vector<std::string> n;
  for (const auto& e : registry()) n.push_back(e.name);
  return n;
}

std::vector<std::string> prune_method_keys(const std::string& method) {
  for (const auto& e : registry())
    if (method == e.name) return e.keys;
  return {};
}

PruneMethodPtr make_prune_method(const Config& c, const std::string& method, const PruneCommon& common) {
  for (const auto& e : registry())
    if (method == e.name) return e.make(c, common);
  std::string known;
  for (const auto& e : registry()) known += (known.empty() ? "" : ", ") + std::string(e.name);
  c.fail("pruning_method", "unknown pruning_method '" + method + "'; known: " + known);
}

int64_t count_of(double frac, int64_t n) {
  return std::clamp<int64_t>(static_cast<int64_t>(std::floor(frac * static_cast<double>(n) + 1e-9)), 0, n);
}

float kth_smallest(const std::vector<float>& v, size_t k) {
  KILN_CHECK(k < v.size(),
             "kth_smallest: rank " + std::to_string(k) + " of " + std::to_string(v.size()) + " values");
  std::vector<float> c = v;
  std::nth_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(k), c.end());
  return c[k];
}

Tensor keep_largest(const Tensor& score, int64_t keep) {
  const int64_t n = score.size();
  keep = std::clamp<int64_t>(keep, 0, n);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  // Largest first; equal scores keep the lower index, so the count is exact and the choice reproducible.
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
  Tensor m(score.shape(), 0.f);
  for (int64_t j = 0; j < keep; ++j) m[idx[static_cast<size_t>(j)]] = 1.f;
  return m;
}

Tensor unit_norms(const Tensor& w) {
  const int64_t units = w.shape().back(), per = w.size() / units;
  Tensor n({units}, 0.f);
  for (int64_t j = 0; j < per; ++j)
    for (int64_t u = 0; u < units; ++u) n[u] += w[j * units + u] * w[j * units + u];
  for (int64_t u = 0; u < units; ++u) n[u] = std::sqrt(n[u]);
  return n;
}

std::string prune_num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

ThresholdGranularity parse_threshold_type(const Config& c) {
  const std::string type = c.get<std::string>("threshold_type", "channelwise");
  if (type == "weightwise") return ThresholdGranularity::kWeight;
  if (type == "channelwise") return ThresholdGranularity::kChannel;
  if (type == "layerwise") return ThresholdGranularity::kLayer;
  c.fail("threshold_type", "threshold_type must be weightwise, channelwise or layerwise, got '" + type + "'");
}

Shape threshold_shape(ThresholdGranularity g, const Tensor& w) {
  if (g == ThresholdGranularity::kWeight) return w.shape();
  if (g == ThresholdGranularity::kChannel) return {w.shape().back()};
  return {1};
}

}  // namespace kiln::compress
