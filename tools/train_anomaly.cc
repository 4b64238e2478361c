#include "tools/train_anomaly.h"

#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "engine/metrics.h"
#include "tools/plot.h"
#include "tools/train_report.h"

namespace kiln {

namespace {

nlohmann::ordered_json anomaly_json(const train::AnomalyReport& r) {
  nlohmann::ordered_json o;
  o["score"] = r.score;
  o["background_test_samples"] = r.background_samples;
  o["background_rates"] = r.rates;
  o["thresholds"] = r.thresholds;  // null where the test has fewer than 1/rate background samples
  nlohmann::ordered_json sig = nlohmann::ordered_json::object();
  for (const auto& s : r.signals) {
    nlohmann::ordered_json e;
    e["samples"] = s.samples;
    e["auc"] = s.auc;
    nlohmann::ordered_json eff = nlohmann::ordered_json::object();
    for (size_t i = 0; i < r.rates.size(); ++i) {
      std::ostringstream k;
      k << r.rates[i];
      eff[k.str()] = s.efficiency[i];
    }
    e["efficiency_at_background_rate"] = eff;
    sig[s.name] = e;
  }
  o["signals"] = sig;
  return o;
}

// ROC curves of each report (one panel per report, a line per signal class), background rate on a log axis.
void write_roc(const std::string& path,
               const std::vector<std::pair<std::string, const train::AnomalyReport*>>& reps) {
  std::vector<plot::Chart> panels;
  for (const auto& [title, r] : reps) {
    plot::Chart c{title, "background rate (false-positive rate)", "signal efficiency", {}};
    c.log_x = true;
    for (size_t i = 0; i < r->signals.size(); ++i) {
      plot::Series s{r->signals[i].name + " (AUC " + fmt_fixed(r->signals[i].auc, 3) + ")", {}, {}};
      for (const auto& [x, y] : r->roc[i]) s.x.push_back(x), s.y.push_back(y);
      c.series.push_back(s);
    }
    panels.push_back(c);
  }
  plot::write_svg(path, panels);
}

// Copies the trained model's weights, quantizers and calibration into the score model by name. The score
// layer's input quantizer is the one the first top-level layer after the latent learned for the same latent
// values (the decoder's input). Any other value without a source is an error, not a random weight. With HGQ,
// the deployed fixed-point score is checked against the quantized forward on test_x. Results go into
// extra["latent_score_model"].
void fill_score_model(ScoreModel& sm, nn::Model& trained, const std::string& latent, const Tensor& train_x,
                      const Tensor& test_x, nlohmann::ordered_json& extra) {
  std::map<std::string, Tensor*> from;
  for (nn::Parameter* p : trained.parameters()) from[p->name] = &p->var.value();
  for (const nn::Buffer& b : trained.buffers()) from[b.name] = b.tensor;
  std::string next;  // the top-level layer after the latent one (names inside blocks contain a '.')
  const auto rows = trained.summary();
  for (size_t i = 0; i < rows.size() && next.empty(); ++i)
    if (rows[i].name == latent)
      for (size_t j = i + 1; j < rows.size() && next.empty(); ++j)
        if (rows[j].name.find('.') == std::string::npos) next = rows[j].name;
  auto copy = [&](const std::string& name, Tensor& to) {
    const bool score = name.rfind("latent_score.", 0) == 0;
    const std::string src = score ? next + name.substr(12) : name;
    auto it = from.find(src);
    if (it != from.end() && it->second->shape() == to.shape()) {
      to = *it->second;
    } else if (!score) {
      throw InputError("the latent score model's '" + name + "' has no counterpart in the trained model");
    } else {
      std::cerr << "note: the score's input quantizer starts from its defaults ('" + next +
                       "' has no input quantizer of that shape); calibration sets its range\n";
    }
  };
  for (nn::Parameter* p : sm.model->parameters()) copy(p->name, p->var.value());
  for (const nn::Buffer& b : sm.model->buffers()) copy(b.name, *b.tensor);
  nlohmann::ordered_json o;
  o["checkpoint"] = "encoder_score.ckpt";
  o["parameters"] = sm.model->num_params();
  if (sm.comp->active()) {
    sm.comp->calibrate(*sm.model, train_x);
    sm.comp->check_deployment(*sm.model, test_x);
    o["ebops"] = sm.comp->ebops();
    const auto& dc = sm.comp->deploy_check();
    if (dc.done) {
      o["deployed_test_samples"] = dc.samples;
      o["deployed_mismatches"] = dc.mismatches;
      o["deployed_accumulator_bits"] = dc.accumulator_bits;
      std::cerr << "encoder score model: deployed fixed-point score " << dc.mismatches << " mismatches on "
                << dc.samples << " test samples, EBOPs " << fmt_fixed(sm.comp->ebops(), 0) << "\n";
    } else {
      o["deployed_refused"] = dc.refused;
    }
  }
  extra["latent_score_model"] = o;
}

}  // namespace

ScoreModel make_score_model(const Config& cfg, const nn::Model& trained, const std::string& latent,
                            uint64_t seed, int round_epochs) {
  ScoreModel sm;
  sm.model = nn::Model::from_yaml(train::latent_score_spec(trained.spec_yaml(), latent),
                                  trained.input_shape(), seed, "the latent score model");
  sm.comp = std::make_unique<CompressionRun>(cfg.child("compression"), cfg.child("training"), *sm.model,
                                             round_epochs);
  return sm;
}

std::unique_ptr<nn::Model> anomaly_outputs(const train::AnomalyOptions& a, nn::Model& model,
                                           const data::Dataset& test, const Tensor& train_x,
                                           const train::LoadedData& ld, const train::Distiller* distiller,
                                           ScoreModel& score, const RunDir& rd, bool quiet,
                                           nlohmann::ordered_json& extra) {
  std::unique_ptr<nn::Model> score_model;
  std::vector<std::pair<std::string, const train::AnomalyReport*>> panels;
  auto report = [&](const std::vector<double>& scores, const std::string& kind) {
    return train::evaluate_anomaly(scores, ld.anomaly_labels, ld.background_classes, ld.signal_classes,
                                   ld.class_names, kind);
  };
  std::vector<double> scores = train::anomaly_scores(model, test.x, a.score, a.latent_layer);
  train::AnomalyReport rep = report(scores, a.score);
  extra["anomaly"] = anomaly_json(rep);
  panels.push_back({"this model: score " + a.score, &rep});
  if (!quiet) std::cerr << train::anomaly_table(rep);
  std::optional<train::AnomalyReport> other;
  std::vector<double> ref;
  std::string ref_name;
  if (distiller) {  // the teacher's own score on the same samples, and how closely the student follows it
    ref = distiller->test_scores(), ref_name = "teacher";
  } else if (a.score == "latent" && shape_numel(model.output_shape()) == shape_numel(model.input_shape())) {
    ref = train::anomaly_scores(model, test.x, "log_mse", ""), ref_name = "reconstruction";
  }
  if (!ref.empty()) {
    other = report(ref, ref_name == "teacher" ? "teacher " + distiller->options().score : "log_mse");
    extra[ref_name + "_anomaly"] = anomaly_json(*other);
    const double r = pearson(scores, ref);
    extra[ref_name + "_score_pearson"] = r;
    panels.push_back({ref_name + ": score " + other->score, &*other});
    if (!quiet)
      std::cerr << ref_name << ":\n"
                << train::anomaly_table(*other) << "Pearson r of the scores (this model vs " << ref_name
                << "): " << fmt_fixed(r) << "\n";
  }
  std::optional<train::AnomalyReport> dep_rep;
  std::vector<double> enc;    // the encoder score model's scores
  if (a.score == "latent") {  // the encoder alone with its score, as the firmware computes it
    fill_score_model(score, model, a.latent_layer, train_x, test.x, extra);
    score_model = std::move(score.model);
    enc = train::anomaly_scores(*score_model, test.x, "output", "");
    dep_rep = report(enc, "latent_score (encoder + sum of squares)");
    extra["latent_score_model"]["anomaly"] = anomaly_json(*dep_rep);
    panels.push_back({"encoder score model", &*dep_rep});
    if (!quiet) std::cerr << "encoder score model:\n" << train::anomaly_table(*dep_rep);
  }
  write_roc(rd.path("roc.svg"), panels);
  // Per test sample: its class and every score computed above, to compare runs or plot elsewhere.
  std::ostringstream csv;
  csv << "class,score" << (ref.empty() ? "" : "," + ref_name) << (score_model ? ",encoder_score" : "")
      << "\n";
  for (size_t i = 0; i < scores.size(); ++i) {
    const int c = ld.anomaly_labels[i];
    csv << (static_cast<size_t>(c) < ld.class_names.size() ? ld.class_names[static_cast<size_t>(c)]
                                                           : std::to_string(c))
        << ',' << std::setprecision(9) << scores[i];
    if (!ref.empty()) csv << ',' << ref[i];
    if (!enc.empty()) csv << ',' << enc[i];
    csv << '\n';
  }
  write_text(rd.path("scores.csv"), csv.str());
  return score_model;
}

}  // namespace kiln
