// What a pruned model reports: overall sparsity (history.csv), per-layer kept weights and units
// (pruning.txt, sparsity.svg, metrics.json).
#include <iomanip>
#include <sstream>

#include "compress/pruner.h"

namespace kiln::compress {

double Pruner::sparsity() {
  double n = 0, kept = 0;
  for (size_t i = 0; i < targets_.size() + passive_.size(); ++i) {
    Tensor k = keep(i);
    n += static_cast<double>(k.size());
    kept += static_cast<double>(k.vec().sum());
  }
  return n > 0 ? 1.0 - kept / n : 0.0;
}

std::vector<std::pair<std::string, double>> Pruner::stats() {
  std::vector<std::pair<std::string, double>> s{{"sparsity", sparsity()}};
  for (auto& kv : method_->stats()) s.push_back(kv);
  return s;
}

std::vector<PruneLayerStats> Pruner::layer_stats() {
  std::vector<PruneLayerStats> out;
  std::vector<PruneTarget*> all = all_targets();
  for (size_t i = 0; i < all.size(); ++i) {
    const PruneTarget& t = *all[i];
    Tensor k = keep(i);
    PruneLayerStats s;
    s.layer = t.layer->name();
    s.weights = k.size();
    s.kept = static_cast<int64_t>(k.vec().sum());
    s.units = t.units();
    const int64_t per = t.per_unit();
    for (int64_t u = 0; u < s.units; ++u) {
      bool any = false;
      for (int64_t j = 0; j < per && !any; ++j) any = k[j * s.units + u] != 0.f;
      s.kept_units += any;
    }
    out.push_back(s);
  }
  return out;
}

std::string Pruner::report() {
  std::ostringstream os;
  os << std::left << std::setw(16) << "layer" << std::right << std::setw(10) << "weights" << std::setw(10)
     << "kept" << std::setw(11) << "sparsity" << std::setw(8) << "units" << std::setw(12) << "units kept"
     << '\n';
  int64_t n = 0, kept = 0;
  for (const auto& s : layer_stats()) {
    n += s.weights, kept += s.kept;
    os << std::left << std::setw(16) << s.layer << std::right << std::setw(10) << s.weights << std::setw(10)
       << s.kept << std::setw(11) << std::fixed << std::setprecision(4)
       << 1.0 - static_cast<double>(s.kept) / static_cast<double>(s.weights) << std::setw(8) << s.units
       << std::setw(12) << s.kept_units << '\n';
  }
  os << std::left << std::setw(16) << "total" << std::right << std::setw(10) << n << std::setw(10) << kept
     << std::setw(11) << std::fixed << std::setprecision(4)
     << (n ? 1.0 - static_cast<double>(kept) / static_cast<double>(n) : 0.0) << '\n';
  return os.str();
}

}  // namespace kiln::compress
