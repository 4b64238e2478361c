// kiln train: trains the model of a YAML config and writes the run directory.
//
//   bazel run //tools:train -- --config data/digits.yaml [--out DIR] [--epochs N] [--threads N] [--seed S]
//                              [--resume RUN/model.ckpt] [--quiet]
//
// Writes DIR/model.ckpt, metrics.json, history.csv, summary.txt and training_curves.svg. Bad input
// (config, data, flags, checkpoint) prints one line "kiln train: error: ..." and exits with status 1.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "codegen/export.h"
#include "engine/metrics.h"
#include "engine/train/checkpoint.h"
#include "engine/train/distill.h"
#include "tools/compression.h"
#include "tools/plot.h"
#include "tools/progress.h"
#include "tools/run_dir.h"
#include "tools/tool_main.h"

namespace kiln {
namespace {

struct Flags {
  std::string config, out, resume;
  int epochs = 0, threads = -1;
  int64_t seed = -1;
  bool quiet = false, overwrite = false;
};

std::string fmt(double v, int prec = 4) {
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
    os << r.epoch << ',' << std::setprecision(6) << r.lr << ',' << fmt(r.train_loss, 6) << ','
       << fmt(r.train_accuracy, 6) << ',' << fmt(r.val_loss, 6) << ',' << fmt(r.val_accuracy, 6) << ','
       << fmt(r.val_auc, 6) << ',' << fmt(r.val_mse, 6) << ',' << fmt(r.seconds, 3) << ','
       << fmt(r.samples_per_second, 1);
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

// The model's output must match the data: one output per class (or one for two classes), or per target.
void check_outputs(const nn::Model& m, const data::Dataset& d, const std::string& loss) {
  const std::string& cfg = m.last_layer_location();
  int64_t outputs = shape_numel(m.output_shape());
  std::string last = m.summary().empty() ? "?" : m.summary().back().name;
  if (!d.labels.empty()) {
    int64_t classes = d.num_classes();
    bool ok = outputs == classes || (outputs == 1 && classes <= 2 && loss != "cross_entropy");
    if (!ok) {
      throw ShapeError(cfg + ": the last layer '" + last + "' gives " + shape_str(m.output_shape()) +
                       " outputs but the data has " + std::to_string(classes) + " classes (" +
                       join(d.class_names) + ")");
    }
  } else if (outputs != d.targets.dim(1)) {
    throw ShapeError(cfg + ": the last layer '" + last + "' gives " + std::to_string(outputs) +
                     " outputs but the data has " + std::to_string(d.targets.dim(1)) + " targets");
  }
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

// --resume continues the checkpoint's model: the config's `model:` and `compression:` sections must be the
// ones it was trained with (training options, data and epochs may change). Names the first key that differs.
void check_resume_matches(const Config& cfg, const train::Checkpoint& ck, const std::string& ck_path) {
  auto section = [](const std::string& yaml, const std::string& key) -> YAML::Node {
    if (yaml.empty()) return YAML::Node();
    YAML::Node root = YAML::Load(yaml);
    return root.IsMap() ? root[key] : YAML::Node();
  };
  struct Pair {
    std::string key;
    YAML::Node here, there;
  };
  YAML::Node ck_model;
  try {
    ck_model = YAML::Load(ck.model_yaml);
  } catch (const YAML::Exception& e) {
    throw InputError(ck_path + ": corrupted checkpoint (its model spec is not YAML: " + e.msg + ")");
  }
  std::vector<Pair> pairs{{"model", cfg.node()["model"], ck_model}};
  if (!ck.config_yaml.empty()) {
    YAML::Node there;
    try {
      there = section(ck.config_yaml, "compression");
    } catch (const YAML::Exception&) {
      // The saved config is informational; the model spec above is what the checkpoint holds.
    }
    pairs.push_back({"compression", cfg.node()["compression"], there});
  }
  for (const Pair& p : pairs) {
    YAML::Mark at = cfg.node()[p.key].IsDefined() ? cfg.node()[p.key].Mark() : cfg.node().Mark();
    std::string d = yaml_difference(p.here, p.there, p.key, &at);
    if (d.empty()) continue;
    std::string where = cfg.file();
    if (!at.is_null()) where += ":" + std::to_string(at.line + 1) + ":" + std::to_string(at.column + 1);
    throw InputError(where + ": --resume " + ck_path + ": the config's " + p.key +
                     " differs from the checkpoint's (" + d +
                     ", config vs checkpoint); resume with the config the run was trained with");
  }
}

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
      plot::Series s{r->signals[i].name + " (AUC " + fmt(r->signals[i].auc, 3) + ")", {}, {}};
      for (const auto& [x, y] : r->roc[i]) s.x.push_back(x), s.y.push_back(y);
      c.series.push_back(s);
    }
    panels.push_back(c);
  }
  plot::write_svg(path, panels);
}

// The encoder of a latent-score model with its sum-of-squares score (train::latent_score_spec) and its
// quantizers; built before training too, so that a latent layer it cannot use, or a compression section that
// does not fit it, fails before hours of training.
struct ScoreModel {
  std::unique_ptr<nn::Model> model;
  std::unique_ptr<CompressionRun> comp;
};
ScoreModel make_score_model(const Config& cfg, const nn::Model& trained, const std::string& latent,
                            uint64_t seed, int round_epochs) {
  ScoreModel sm;
  sm.model = nn::Model::from_yaml(train::latent_score_spec(trained.spec_yaml(), latent),
                                  trained.input_shape(), seed, "the latent score model");
  sm.comp = std::make_unique<CompressionRun>(cfg.child("compression"), cfg.child("training"), *sm.model,
                                             round_epochs);
  return sm;
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
                << dc.samples << " test samples, EBOPs " << fmt(sm.comp->ebops(), 0) << "\n";
    } else {
      o["deployed_refused"] = dc.refused;
    }
  }
  extra["latent_score_model"] = o;
}

int run(const Flags& f) {
  auto t0 = std::chrono::steady_clock::now();
  Config cfg = Config::load_file(f.config);
  std::string config_text;  // saved in every checkpoint, for resuming and exporting
  {
    std::ifstream in(f.config);
    config_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  cfg.check_unused({"name", "data", "model", "training", "compression", "export", "output_dir"});
  train::DataOptions dopt = train::parse_data(cfg.child("data", true));
  train::TrainOptions topt = train::parse_training(cfg.child("training"));
  const train::DistillOptions dist =
      cfg.child("training").has("distillation")
          ? train::parse_distillation(cfg.child("training").child("distillation"))
          : train::DistillOptions{};
  if (dopt.anomaly.enabled() && !dopt.autoencoder && !(dist.enabled() && dist.mode == "regression"))
    throw InputError(
        dopt.anomaly.where +
        ": anomaly scores need data task: autoencoder, or a student with distillation mode regression");
  if (!f.resume.empty() && dist.enabled() && (dist.mode == "features" || dist.mode == "colearn"))
    throw InputError(dist.where + ": --resume is not supported with distillation mode " + dist.mode +
                     " (its adapters and teacher state are not in the checkpoint); start the run again");
  Config model_cfg = cfg.child("model", true);
  if (f.epochs > 0) topt.epochs = f.epochs;
  if (f.threads >= 0) topt.threads = f.threads;
  if (f.seed >= 0) topt.seed = static_cast<uint64_t>(f.seed);
  std::string stem = std::filesystem::path(f.config).stem().string();
  std::string out = !f.out.empty() ? f.out : cfg.get<std::string>("output_dir", "runs/" + stem);
  train::set_threads(topt.threads);
  RunDir::check(out, "kiln train", f.overwrite);  // before the data loads: a refused --out costs nothing
  std::optional<codegen::ExportOptions> exp;      // parsed now: a bad key fails before training, not after
  const bool wants_export = cfg.has("export");    // only when asked: child() of an absent key is an empty map
  Config export_cfg = cfg.child("export");
  if (wants_export) exp = codegen::parse_export(export_cfg, out);

  train::Checkpoint resume;
  std::map<int, std::string> earlier_front;  // the resumed run's pareto/ checkpoints, kept in memory
  if (!f.resume.empty()) {
    resume = train::load_checkpoint(f.resume);
    check_resume_matches(cfg, resume, f.resume);
    // Read now: resuming DIR.partial/model.ckpt into DIR replaces DIR.partial, pareto/ included.
    const std::filesystem::path pareto = std::filesystem::path(f.resume).parent_path() / "pareto";
    for (const auto& r : resume.history) {
      std::ifstream in(pareto / ("epoch_" + std::to_string(r.epoch) + ".ckpt"), std::ios::binary);
      if (in)
        earlier_front[r.epoch].assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  train::LoadedData ld = train::load_data(dopt, topt.seed, f.resume.empty() ? nullptr : &resume.standardizer);
  std::shared_ptr<train::Distiller> distiller;
  if (dist.enabled()) {
    distiller = std::make_shared<train::Distiller>(dist, ld.standardizer, topt.seed);
    distiller->prepare(ld.split, topt);
    if (!f.quiet)
      std::cerr << "distillation (" << dist.mode << ") from " << dist.teacher << ": teacher "
                << distiller->teacher().num_params() << " parameters\n";
  }
  const data::Split& s = ld.split;
  Shape sample(s.train.x.shape().begin() + 1, s.train.x.shape().end());
  if (!f.quiet)
    std::cerr << "data: " << s.train.size() << " train / " << s.val.size() << " validation / "
              << s.test.size() << " test samples, input " << shape_str(sample);
  if (!f.quiet && !s.train.labels.empty()) std::cerr << ", " << s.train.num_classes() << " classes";
  if (!f.quiet) std::cerr << " (" << s.train.source << ")\n";

  std::unique_ptr<nn::Model> model;
  std::unique_ptr<CompressionRun> comp;
  if (f.resume.empty()) {
    model = nn::Model::from_config(model_cfg, sample, topt.seed);
    comp =
        std::make_unique<CompressionRun>(cfg.child("compression"), cfg.child("training"), *model, f.epochs);
  } else {
    if (resume.input_shape != sample)
      throw InputError(f.resume + ": the checkpoint's model takes " + shape_str(resume.input_shape) +
                       ", the data gives " + shape_str(sample));
    // Quantizers are attached before the weights load: their bit widths are in the checkpoint too.
    model =
        nn::Model::from_yaml(resume.model_yaml, resume.input_shape, resume.seed, f.resume + " (model spec)");
    comp =
        std::make_unique<CompressionRun>(cfg.child("compression"), cfg.child("training"), *model, f.epochs);
    train::load_weights(*model, resume);
    comp->loaded();
    if (resume.class_names != s.train.class_names) {
      throw InputError(f.resume + ": the checkpoint was trained on classes (" + join(resume.class_names) +
                       "), the data has (" + join(s.train.class_names) + ")");
    }
  }
  check_outputs(*model, s.train, topt.loss);
  if (dopt.anomaly.enabled()) train::check_score(*model, dopt.anomaly);
  ScoreModel score;  // a latent-score run's encoder + score: built now, filled after training
  if (dopt.anomaly.enabled() && dopt.anomaly.score == "latent") {
    try {
      score = make_score_model(cfg, *model, dopt.anomaly.latent_layer, topt.seed, f.epochs);
    } catch (const InputError& e) {
      throw InputError(dopt.anomaly.where + ": anomaly score 'latent': " + e.what());
    }
  }
  // With pruning, training.epochs (or --epochs) is one round: the schedule sets the run's length.
  topt.epochs = comp->total_epochs(topt.epochs);
  if (comp->pruning() && !s.train.labels.empty())
    comp->pruner()->set_classes(static_cast<int>(s.train.num_classes()));
  if (exp) {
    // The whole export but writing, on the untrained model: an unsupported layer or a reuse factor that
    // does not fit fails now, naming the config, not after hours of training.
    codegen::ExportOptions dry = *exp;
    dry.dry_run = true;
    try {
      // A latent-score run exports its encoder + score, not the autoencoder.
      train::Checkpoint ck =
          train::make_checkpoint(score.model ? *score.model : *model, ld.standardizer, s.train);
      ck.config_yaml = config_text;  // the export rebuilds the quantizers from it
      codegen::export_checkpoint(ck, dry);
    } catch (const InputError& e) {
      const std::string what = e.what();
      const bool rf = what.find("reuse factor") != std::string::npos && export_cfg.has("reuse_factor");
      throw InputError((rf ? export_cfg.location("reuse_factor") : cfg.location("export")) +
                       ": export: " + what);
    }
  }

  RunDir rd(out, "kiln train", f.overwrite);
  if (exp) exp->out_dir = rd.staging() + exp->out_dir.substr(out.size());  // firmware is part of the run
  try {
    std::string summary = model->summary_text();
    if (!f.quiet) std::cerr << summary;
    write_text(rd.path("summary.txt"), summary);
    train::Trainer tr(*model, topt);
    comp->add_to(tr);
    if (distiller) distiller->attach(tr, *model, topt, distiller);
    if (!f.resume.empty()) {
      tr.optimizer().load_state(resume.optimizer_state, model->parameters());
      tr.history() = resume.history;
      tr.set_best_state(resume.best_state);
      comp->resume(resume.history, earlier_front, rd);
    }
    bool tty = stderr_is_tty();
    std::unique_ptr<ProgressBar> bar;
    auto on_batch = [&](const train::BatchProgress& p) {
      if (f.quiet) return;
      if (p.batch == 1)
        bar = std::make_unique<ProgressBar>(
            "epoch " + std::to_string(p.epoch) + "/" + std::to_string(topt.epochs), p.batches, std::cerr,
            tty);
      ProgressBar::Stats st{{"loss", p.loss}};
      if (std::isfinite(p.accuracy)) st.push_back({"acc", p.accuracy});
      bar->update(p.batch, p.samples, st);
    };
    auto save = [&](const std::string& path) {
      train::Checkpoint ck = train::make_checkpoint(*model, ld.standardizer, s.train);
      ck.config_yaml = config_text;
      ck.optimizer_state = tr.optimizer().state();
      ck.history = tr.history();
      ck.best_state = tr.best_state();
      ck.seed = topt.seed;
      train::save_checkpoint(ck, path);
    };
    if (!f.resume.empty()) save(rd.path("model.ckpt"));  // the resumed state, until an epoch ends
    auto on_epoch = [&](const train::EpochRecord& r) {
      write_text(rd.path("history.csv"), history_csv(tr.history()));
      // The front's checkpoints first, then the run's: a run killed in between resumes from the previous
      // epoch and writes this epoch's front checkpoint again, the same.
      comp->on_epoch(r, rd, save);
      save(rd.path("model.ckpt"));  // each epoch: a killed run resumes from here (DIR.partial/model.ckpt)
      if (f.quiet || !bar) return;
      ProgressBar::Stats st{{"loss", r.train_loss}};
      if (std::isfinite(r.train_accuracy)) st.push_back({"acc", r.train_accuracy});
      if (std::isfinite(r.val_loss)) st.push_back({"val_loss", r.val_loss});
      if (std::isfinite(r.val_accuracy)) st.push_back({"val_acc", r.val_accuracy});
      if (std::isfinite(r.val_mse)) st.push_back({"val_mse", r.val_mse});
      bar->finish(st);
      std::string q = CompressionRun::progress_stats(r);
      if (!q.empty()) std::cerr << "  " << q << "\n";
    };
    try {
      tr.fit(s.train, s.val, on_batch, on_epoch);
    } catch (const InputError& e) {  // a diverged pruned run says how far the pruning had gone
      const std::string what = e.what();
      if (comp->pruning() && what.rfind("training diverged", 0) == 0)
        throw InputError(what + comp->context());
      throw;
    }
    if (tr.stopped_early())
      std::cerr << "early stopping: no improvement in " << topt.early_stopping.monitor << " for "
                << topt.early_stopping.patience << " epochs; best epoch " << tr.best_epoch() << "\n";

    const data::Dataset& test = s.test.size() ? s.test : s.val;
    comp->write_sparsity_front(tr.history(), rd);
    comp->finish_pruning(rd);            // first: the test sees the final masks
    comp->calibrate(*model, s.train.x);  // and the deployed bit widths
    // An anomaly run's test loss is that of the background samples (the signal would inflate it, and the
    // validation loss it is compared with is background only); the signal is judged by the anomaly metrics.
    data::Dataset test_bg;
    if (dopt.anomaly.enabled())
      test_bg = data::subset(test, train::samples_of_classes(ld.anomaly_labels, ld.background_classes));
    const data::Dataset& test_eval = dopt.anomaly.enabled() ? test_bg : test;
    train::EvalResult ev = train::evaluate(*model, test_eval, topt);
    // The deployed model's check compares with the test evaluation's outputs when they cover the whole test
    // split (one quantized forward over it instead of two).
    comp->finish(*model, test.x, dopt.anomaly.enabled() ? nullptr : &ev.outputs, rd);
    if (comp->pruning() && !f.quiet)
      std::cerr << "pruning (" << comp->pruner()->options().method << "):\n" << comp->pruning_report();
    if (comp->active() && !f.quiet) {
      std::cerr << "quantization after calibration:\n" << comp->report();
      const auto& dc = comp->deploy_check();
      if (dc.done) {
        std::cerr << "deployed fixed-point model: " << dc.mismatches
                  << " mismatches against the quantized forward on " << dc.samples
                  << " test samples (widest accumulator " << dc.accumulator_bits << " bits)\n";
        // float32 holds integers exactly up to 2^24: wider sums in the training forward may round. The
        // deployed integers (and the generated C and HLS, which match them) are the exact ones.
        if (dc.mismatches > 0 && dc.accumulator_bits > 24)
          std::cerr
              << "  (accumulators wider than 24 bits: the float32 training forward rounds some sums; the "
                 "deployed model and its generated code are exact. Fewer bits, e.g. a higher beta, avoid "
                 "it)\n";
      } else {
        std::cerr << "deployed fixed-point model not built: " << dc.refused << "\n";
      }
    }
    nlohmann::ordered_json extra;
    std::unique_ptr<nn::Model> score_model;
    if (dopt.anomaly.enabled()) {
      std::vector<std::pair<std::string, const train::AnomalyReport*>> panels;
      const auto& a = dopt.anomaly;
      auto report = [&](const std::vector<double>& scores, const std::string& kind) {
        return train::evaluate_anomaly(scores, ld.anomaly_labels, ld.background_classes, ld.signal_classes,
                                       ld.class_names, kind);
      };
      std::vector<double> scores = train::anomaly_scores(*model, test.x, a.score, a.latent_layer);
      train::AnomalyReport rep = report(scores, a.score);
      extra["anomaly"] = anomaly_json(rep);
      panels.push_back({"this model: score " + a.score, &rep});
      if (!f.quiet) std::cerr << train::anomaly_table(rep);
      std::optional<train::AnomalyReport> other;
      std::vector<double> ref;
      std::string ref_name;
      if (distiller) {  // the teacher's own score on the same samples, and how closely the student follows it
        ref = distiller->test_scores(), ref_name = "teacher";
      } else if (a.score == "latent" &&
                 shape_numel(model->output_shape()) == shape_numel(model->input_shape())) {
        ref = train::anomaly_scores(*model, test.x, "log_mse", ""), ref_name = "reconstruction";
      }
      if (!ref.empty()) {
        other = report(ref, ref_name == "teacher" ? "teacher " + distiller->options().score : "log_mse");
        extra[ref_name + "_anomaly"] = anomaly_json(*other);
        const double r = pearson(scores, ref);
        extra[ref_name + "_score_pearson"] = r;
        panels.push_back({ref_name + ": score " + other->score, &*other});
        if (!f.quiet)
          std::cerr << ref_name << ":\n"
                    << train::anomaly_table(*other) << "Pearson r of the scores (this model vs " << ref_name
                    << "): " << fmt(r) << "\n";
      }
      std::optional<train::AnomalyReport> dep_rep;
      std::vector<double> enc;    // the encoder score model's scores
      if (a.score == "latent") {  // the encoder alone with its score, as the firmware computes it
        fill_score_model(score, *model, a.latent_layer, s.train.x, test.x, extra);
        score_model = std::move(score.model);
        enc = train::anomaly_scores(*score_model, test.x, "output", "");
        dep_rep = report(enc, "latent_score (encoder + sum of squares)");
        extra["latent_score_model"]["anomaly"] = anomaly_json(*dep_rep);
        panels.push_back({"encoder score model", &*dep_rep});
        if (!f.quiet) std::cerr << "encoder score model:\n" << train::anomaly_table(*dep_rep);
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
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_text(rd.path("history.csv"), history_csv(tr.history()));
    write_text(rd.path("metrics.json"), metrics_json(ev, test_eval, tr, *model, wall, *comp, extra));
    write_curves(rd.path("training_curves.svg"), tr.history(), !s.train.labels.empty());

    save(rd.path("model.ckpt"));
    if (score_model) {
      train::Checkpoint ck = train::make_checkpoint(*score_model, ld.standardizer, s.train);
      ck.config_yaml = config_text;
      ck.seed = topt.seed;
      train::save_checkpoint(ck, rd.path("encoder_score.ckpt"));
    }
    if (exp) {  // before the commit: a run whose export failed does not look complete
      // A latent-score run exports its encoder and score, not the autoencoder.
      codegen::ExportResult r = codegen::export_checkpoint(
          train::load_checkpoint(rd.path(score_model ? "encoder_score.ckpt" : "model.ckpt")), *exp);
      if (!f.quiet) std::cerr << "export (" << exp->target << "):\n" << r.report_text;
      if (!r.note.empty()) std::cerr << "export note: " << r.note << "\n";
    }
    rd.commit();
    if (exp) std::cerr << "wrote firmware to " << out << exp->out_dir.substr(rd.staging().size()) << "\n";

    std::cout << "test: " << test_eval.size() << (dopt.anomaly.enabled() ? " background" : "")
              << " samples, loss " << fmt(ev.loss);
    if (!test.labels.empty())
      std::cout << ", accuracy " << fmt(ev.accuracy) << ", mean AUC " << fmt(ev.auc);
    else
      std::cout << ", MSE " << fmt(ev.mse, 6);
    if (comp->pruning()) std::cout << ", sparsity " << fmt(comp->sparsity());
    if (comp->active())
      std::cout << ", EBOPs " << fmt(comp->ebops(), 0)
                << " (uniform 8-bit: " << fmt(comp->uniform_ebops(8), 0) << ")";
    std::cout << "\nwrote " << out
              << "/{model.ckpt, metrics.json, history.csv, summary.txt, training_curves.svg"
              << (dopt.anomaly.enabled() ? ", roc.svg, scores.csv" : "") << "} in " << fmt(wall, 1) << " s\n";
  } catch (const std::exception& e) {
    rd.fail(e.what());
    throw;
  }
  return 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  CLI::App app{"kiln train: train a model described by a YAML config (data, model, training sections)"};
  kiln::Flags f;
  app.add_option("--config", f.config, "YAML config, e.g. data/digits.yaml")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--out", f.out,
                 "output directory (default: output_dir from the config, else runs/<config name>)");
  app.add_option("--epochs", f.epochs, "override training.epochs (with pruning: the epochs of one round)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--threads", f.threads, "OpenMP threads (0 = all cores; default training.threads, else 1)")
      ->check(CLI::Range(0, 4096));
  app.add_option("--seed", f.seed, "override training.seed (initialisation, split, shuffling, dropout)")
      ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));
  app.add_option("--resume", f.resume, "continue training from a checkpoint up to --epochs/training.epochs")
      ->check(CLI::ExistingFile);
  app.add_flag("--quiet", f.quiet, "no progress bars or summary; print only the result");
  app.add_flag("--overwrite", f.overwrite,
               "replace an earlier run in the output directory (kept until the new run is complete)");
  return kiln::run_tool("kiln train", app, argc, argv, [&] { return kiln::run(f); });
}
