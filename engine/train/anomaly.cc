#include "engine/train/anomaly.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>

#include "engine/autograd.h"
#include "engine/metrics.h"

namespace kiln::train {

const std::vector<std::string> kAnomalyScores{"mse", "log_mse", "latent", "output"};

AnomalyOptions parse_anomaly(const Config& c) {
  AnomalyOptions o;
  if (!c.defined()) return o;
  c.check_unused({"background", "signal", "score", "latent_layer"});
  o.where = c.location();
  o.background = c.require<std::vector<std::string>>("background");
  o.signal = c.require<std::vector<std::string>>("signal");
  if (o.background.empty()) c.fail("background", "anomaly: background needs at least one class");
  if (o.signal.empty()) c.fail("signal", "anomaly: signal needs at least one class");
  for (const auto& s : o.signal)
    if (std::find(o.background.begin(), o.background.end(), s) != o.background.end())
      c.fail("signal", "anomaly: class '" + s + "' is both background and signal");
  o.score = c.get<std::string>("score", o.score);
  if (std::find(kAnomalyScores.begin(), kAnomalyScores.end(), o.score) == kAnomalyScores.end())
    c.fail("score", "anomaly: unknown score '" + o.score + "' (valid: mse, log_mse, latent, output)");
  o.latent_layer = c.get<std::string>("latent_layer", "");
  if (o.score == "latent" && o.latent_layer.empty())
    c.fail("score",
           "anomaly: score 'latent' needs latent_layer (the layer whose outputs are the latent means)");
  return o;
}

std::vector<int> class_indices(const std::vector<std::string>& names,
                               const std::vector<std::string>& class_names, const std::string& where,
                               const std::string& what) {
  std::vector<int> out;
  for (const auto& n : names) {
    auto it = std::find(class_names.begin(), class_names.end(), n);
    if (it == class_names.end()) {
      throw InputError(where + ": anomaly " + what + " class '" + n +
                       "' is not in the data (classes: " + join(class_names) + ")");
    }
    out.push_back(static_cast<int>(it - class_names.begin()));
  }
  return out;
}

std::vector<int64_t> samples_of_classes(const std::vector<int>& labels, const std::vector<int>& classes) {
  const std::set<int> keep(classes.begin(), classes.end());
  std::vector<int64_t> idx;
  for (size_t i = 0; i < labels.size(); ++i)
    if (keep.count(labels[i])) idx.push_back(static_cast<int64_t>(i));
  return idx;
}

void check_score(const nn::Model& m, const AnomalyOptions& o) {
  const int64_t in = shape_numel(m.input_shape()), out = shape_numel(m.output_shape());
  if ((o.score == "mse" || o.score == "log_mse") && in != out)
    throw ShapeError(m.last_layer_location() + ": anomaly score '" + o.score +
                     "' compares the reconstruction " + shape_str(m.output_shape()) + " with the input " +
                     shape_str(m.input_shape()) + ": their sizes differ");
  if (o.score == "output" && out != 1)
    throw ShapeError(m.last_layer_location() + ": anomaly score 'output' needs one output, the model gives " +
                     shape_str(m.output_shape()));
  if (o.score == "latent") {
    for (const auto& r : m.summary())
      if (r.name == o.latent_layer) return;
    std::string names;
    for (const auto& r : m.summary()) names += (names.empty() ? "" : ", ") + r.name;
    throw InputError(o.where + ": anomaly latent_layer '" + o.latent_layer +
                     "' is not a layer of the model (" + names + ")");
  }
}

std::vector<double> anomaly_scores(nn::Model& m, const Tensor& x, const std::string& score,
                                   const std::string& latent_layer, int64_t batch_size) {
  const Tensor v = m.predict(x, score == "latent" ? latent_layer : "", batch_size);  // [N, w]
  const int64_t n = v.ndim() ? v.dim(0) : 0, w = n ? v.size() / n : 0;
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* r = v.data() + i * w;
    double s = 0;
    if (score == "latent") {
      for (int64_t j = 0; j < w; ++j) s += static_cast<double>(r[j]) * r[j];
    } else if (score == "output") {
      s = r[0];
    } else {  // reconstruction error against the input
      const float* xi = x.data() + i * w;
      for (int64_t j = 0; j < w; ++j)
        s += (static_cast<double>(r[j]) - xi[j]) * (static_cast<double>(r[j]) - xi[j]);
      s /= static_cast<double>(w);
      if (score == "log_mse") s = std::log(std::max(s, 1e-30));
    }
    out[static_cast<size_t>(i)] = s;
  }
  return out;
}

std::string latent_score_spec(const std::string& model_yaml, const std::string& latent_layer) {
  YAML::Node spec = YAML::Load(model_yaml);
  YAML::Node layers = spec["layers"];
  YAML::Node kept(YAML::NodeType::Sequence);
  bool found = false;
  for (const auto& l : layers) {
    kept.push_back(l);
    if (l["name"] && l["name"].as<std::string>() == latent_layer) {
      found = true;
      break;
    }
  }
  if (!found)
    throw InputError("the latent score's layer '" + latent_layer +
                     "' must be a top-level layer with that name in the model's layers");
  YAML::Node score;
  score["name"] = "latent_score";
  score["type"] = "sum_squares";
  kept.push_back(score);
  YAML::Node out = YAML::Clone(spec);
  out["layers"] = kept;
  YAML::Emitter e;
  e << out;
  return e.c_str();
}

AnomalyReport evaluate_anomaly(const std::vector<double>& scores, const std::vector<int>& labels,
                               const std::vector<int>& background, const std::vector<int>& signal,
                               const std::vector<std::string>& class_names, const std::string& score) {
  if (scores.size() != labels.size())
    throw ShapeError("evaluate_anomaly: " + std::to_string(scores.size()) + " scores for " +
                     std::to_string(labels.size()) + " labels");
  AnomalyReport r;
  r.score = score;
  auto scores_of = [&](const std::vector<int>& classes) {
    std::vector<double> out;
    for (int64_t i : samples_of_classes(labels, classes)) out.push_back(scores[static_cast<size_t>(i)]);
    return out;
  };
  const std::vector<double> b = scores_of(background);
  r.background_samples = static_cast<int64_t>(b.size());
  for (double rate : r.rates) r.thresholds.push_back(rate_threshold(b, rate));
  for (int c : signal) {
    SignalResult s;
    s.name =
        c < static_cast<int>(class_names.size()) ? class_names[static_cast<size_t>(c)] : std::to_string(c);
    const std::vector<double> sig = scores_of({c});
    s.samples = static_cast<int64_t>(sig.size());
    s.auc = roc_auc(b, sig);
    for (double t : r.thresholds) s.efficiency.push_back(efficiency_above(sig, t));
    r.roc.push_back(roc_curve(b, sig));
    r.signals.push_back(std::move(s));
  }
  return r;
}

std::string anomaly_table(const AnomalyReport& r) {
  std::ostringstream os;
  auto num = [](double v, int p) {
    std::ostringstream o;
    if (std::isfinite(v))
      o << std::fixed << std::setprecision(p) << v;
    else
      o << "n/a";
    return o.str();
  };
  os << "anomaly score '" << r.score << "', " << r.background_samples << " background test samples\n";
  os << "  " << std::left << std::setw(14) << "signal" << std::right << std::setw(8) << "samples"
     << std::setw(8) << "AUC";
  for (double rate : r.rates) {
    std::ostringstream h;
    h << "eff@" << rate;
    os << std::setw(12) << h.str();
  }
  os << "\n";
  for (const auto& s : r.signals) {
    os << "  " << std::left << std::setw(14) << s.name << std::right << std::setw(8) << s.samples
       << std::setw(8) << num(s.auc, 4);
    for (double e : s.efficiency) os << std::setw(12) << num(e, 4);
    os << "\n";
  }
  return os.str();
}

}  // namespace kiln::train
