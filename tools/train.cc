// kiln train: trains the model of a YAML config and writes the run directory.
//
//   bazel run //tools:train -- --config data/digits.yaml [--out DIR] [--epochs N] [--threads N] [--seed S]
//                              [--resume RUN/model.ckpt] [--quiet]
//
// Writes DIR/model.ckpt, metrics.json, history.csv, summary.txt and training_curves.svg (train_report.h;
// an anomaly run also roc.svg and scores.csv, train_anomaly.h). Bad input (config, data, flags, checkpoint)
// prints one line "kiln train: error: ..." and exits with status 1.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "codegen/export.h"
#include "engine/train/checkpoint.h"
#include "engine/train/distill.h"
#include "tools/compression.h"
#include "tools/progress.h"
#include "tools/run_dir.h"
#include "tools/tool_main.h"
#include "tools/train_anomaly.h"
#include "tools/train_report.h"

namespace kiln {
namespace {

struct Flags {
  std::string config, out, resume;
  int epochs = 0, threads = -1;
  int64_t seed = -1;
  bool quiet = false, overwrite = false;
};

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
    if (dopt.anomaly.enabled())
      score_model = anomaly_outputs(dopt.anomaly, *model, test, s.train.x, ld, distiller.get(), score, rd,
                                    f.quiet, extra);
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
              << " samples, loss " << fmt_fixed(ev.loss);
    if (!test.labels.empty())
      std::cout << ", accuracy " << fmt_fixed(ev.accuracy) << ", mean AUC " << fmt_fixed(ev.auc);
    else
      std::cout << ", MSE " << fmt_fixed(ev.mse, 6);
    if (comp->pruning()) std::cout << ", sparsity " << fmt_fixed(comp->sparsity());
    if (comp->active())
      std::cout << ", EBOPs " << fmt_fixed(comp->ebops(), 0)
                << " (uniform 8-bit: " << fmt_fixed(comp->uniform_ebops(8), 0) << ")";
    std::cout << "\nwrote " << out
              << "/{model.ckpt, metrics.json, history.csv, summary.txt, training_curves.svg"
              << (dopt.anomaly.enabled() ? ", roc.svg, scores.csv" : "") << "} in " << fmt_fixed(wall, 1)
              << " s\n";
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
