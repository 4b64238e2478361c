#include "tools/symreg_flags.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "engine/check.h"
#include "symreg/lut.h"

namespace kiln::symreg {

CLI::Option* add_flags(CLI::App& app, Flags& f) {
  app.add_option("--data", f.data, "CSV file (plain or .gz), with a header line unless --no-header")
      ->required();
  app.add_option("--target", f.target, "the column to predict (name; index with --no-header; default: last)");
  app.add_option("--features", f.features, "comma-separated feature columns (default: all but the target)");
  app.add_option("--ops", f.ops, "operators, e.g. \"+,-,*,/,sin,exp,lut_sin\" (default +,-,*,/)");
  app.add_option("--complexity", f.complexity, "per-operator complexity, e.g. sin=2,exp=3,const=1,var=1");
  app.add_option("--forbid", f.forbid,
                 "forbidden nestings OUTER>INNER, e.g. sin>cos (f>f is always forbidden for "
                 "transcendental f)");
  app.add_option("--max-complexity", f.max_complexity,
                 "largest complexity of an expression, 1 to 512000 (default 30)");
  app.add_option("--max-depth", f.max_depth, "largest depth of an expression, 1 to 512 (default 10)");
  app.add_option("--time-limit", f.time_limit, "seconds, at most 1e7; 0 = none (default)");
  app.add_option("--generations", f.generations,
                 "generations, at most 1e7; 0 = until the time limit (default 100)");
  app.add_option("--target-loss", f.target_loss, "stop once the best loss is this low (default: off)");
  app.add_option("--seed", f.seed, "random seed >= 0 (default 1); same seed, same front, whatever --threads");
  app.add_option("--threads", f.threads, "OpenMP threads, at most 1024; 0 = all cores (default 1)");
  CLI::Option* islands = app.add_option(
      "--islands", f.islands, "populations in all, 1 to 1024 (default 4; over MPI a multiple of the ranks)");
  app.add_option(
         "--islands-per-rank", f.islands_per_rank,
         "populations per MPI rank, 1 to 1024: mpirun -np N evolves N x this many islands, the front of one "
         "process with --islands N x this and the same seed (default: --islands shared by the ranks)")
      ->excludes(islands);
  app.add_option("--population", f.population,
                 "expressions per island, 2 to 100000; islands x population <= 1e6 (default 100)");
  app.add_flag("--classes", f.classes, "the target is a class label: one expression per class (one-vs-rest)");
  app.add_option("--loss", f.loss, "mse, mae (regression); l2_margin (default with --classes), logistic");
  app.add_option("--weights", f.weights, "column of sample weights (>= 0)");
  app.add_option("--select", f.select, "model to export: best (default), accuracy, score");
  app.add_option("--loss-floor", f.loss_floor,
                 "losses at or below this tie on the front: auto (default; the float noise of the targets), "
                 "0 (none, as PySR) or a number >= 0");
  CLI::Option* test_split = app.add_option("--test-split", f.test_split,
                                           "fraction of rows held out for the test metrics (default 0.2; "
                                           "with --teacher the teacher's, its split)");
  app.add_flag("--no-header", f.no_header, "the CSV has no header line; columns are named col0, col1, ...");
  app.add_option("--lut-size", f.lut_size,
                 "entries of every lookup table, 2 to 65536 (lut_* operators; default 1024)");
  app.add_option("--out", f.out, "output directory (default runs/symreg)");
  app.add_option("--export", f.exp, "write the selected expression as code: c, hls or c,hls");
  app.add_option("--hls-type", f.hls_type,
                 "fixed-point type of the HLS export: ap_fixed<W, I> or ap_ufixed<W, I>, 1 <= W <= 64, "
                 "-64 <= I <= 64, optionally with a quantization and an overflow mode, e.g. "
                 "\"ap_fixed<16, 6, AP_RND, AP_SAT>\" (default \"ap_fixed<16, 6>\", hls4ml's; pick the "
                 "integer bits for your inputs' range)");
  app.add_option("--function", f.function,
                 "name of the exported function, used as given: a C identifier, not a C/C++ keyword or "
                 "reserved name (default kiln_symreg; kiln_symreg_CLASS per class)");
  app.add_option(
      "--teacher", f.teacher,
      "distil a trained classifier (RUN/model.ckpt of //tools:train): its outputs are the labels, the "
      "test metric is AUC against the --target labels, the network's own AUC beside it");
  app.add_option(
      "--teacher-target", f.teacher_target,
      "what the expressions fit: score (default: the teacher's one-vs-rest logit, mse), probability "
      "(its p, mse) or label (its decisions +-1, l2_margin or logistic)");
  app.add_option(
      "--teacher-samples", f.teacher_samples,
      "extra training inputs labelled by the teacher: training rows plus Gaussian noise (0 to 1e7; "
      "default 0)");
  app.add_option("--teacher-noise", f.teacher_noise,
                 "the sampled inputs' noise, a share of each feature's std, in (0, 10] (default 0.1)");
  app.add_flag("--quiet", f.quiet, "no progress lines");
  app.add_flag("--overwrite", f.overwrite,
               "replace an earlier run in --out (kept until the new run is complete)");
  return test_split;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) v.push_back(item);
  return v;
}

std::string number(double v) {
  char buf[40];
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (!std::isfinite(v) || std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

double parse_loss_floor(const std::string& s) {
  if (s == "auto") return -1;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(std::isfinite(v) && v >= 0))
    throw InputError("--loss-floor: '" + s + "' is not auto or a finite number >= 0");
  return v;
}

int check_flags(const Flags& f, int ranks) {
  auto range = [](const char* flag, double v, double lo, double hi, const std::string& note = "") {
    if (!(std::isfinite(v) && v >= lo && v <= hi))
      throw InputError(std::string(flag) + ": " + number(v) + " is not in [" + number(lo) + ", " +
                       number(hi) + "]" + note);
  };
  range("--time-limit", f.time_limit, 0, 1e7, " (seconds; 0 = no limit)");
  range("--threads", f.threads, 0, 1024, " (0 = all cores)");
  range("--generations", f.generations, 0, 1e7, " (0 = until the time limit)");
  // Complexity is at most 1000 per node (--complexity) on at most kMaxLength nodes, depth at most the length.
  range("--max-complexity", f.max_complexity, 1, 1000.0 * kMaxLength);
  range("--max-depth", f.max_depth, 1, kMaxLength);
  range("--islands", f.islands, 1, 1024);
  if (f.islands_per_rank != 0) range("--islands-per-rank", f.islands_per_rank, 1, 1024);
  if (f.islands_per_rank == 0 && f.islands % ranks != 0)
    throw InputError("--islands: " + std::to_string(f.islands) + " islands cannot be shared by " +
                     std::to_string(ranks) + " ranks; give a multiple of " + std::to_string(ranks) +
                     " or --islands-per-rank K");
  const int islands = f.islands_per_rank != 0 ? f.islands_per_rank * ranks : f.islands;
  const std::string per_rank = f.islands_per_rank != 0 ? " per rank" : "";
  range("--population", f.population, 2, 100000, " (per island)");
  if (static_cast<int64_t>(f.islands_per_rank != 0 ? f.islands_per_rank : f.islands) * f.population > 1000000)
    throw InputError(
        "--population: " + std::to_string(f.population) + " x --islands" +
        (per_rank.empty() ? " " : "-per-rank ") +
        std::to_string(f.islands_per_rank != 0 ? f.islands_per_rank : f.islands) + " = " +
        std::to_string(static_cast<int64_t>(f.islands_per_rank != 0 ? f.islands_per_rank : f.islands) *
                       f.population) +
        " expressions" + per_rank + "; at most 1000000");
  if (f.seed < 0) throw InputError("--seed: " + std::to_string(f.seed) + " is negative (a seed is >= 0)");
  if (!(f.test_split >= 0 && f.test_split < 1))
    throw InputError("--test-split: " + number(f.test_split) + " is not in [0, 1)");
  if (!std::isfinite(f.target_loss))
    throw InputError("--target-loss: " + number(f.target_loss) + " is not a finite number (< 0 = off)");
  set_lut_size(f.lut_size);  // checks it is in [2, 65536]
  parse_loss_floor(f.loss_floor);
  if (f.teacher.empty()) {
    const char* flag = f.teacher_samples != 0        ? "--teacher-samples"
                       : f.teacher_noise != 0.1      ? "--teacher-noise"
                       : f.teacher_target != "score" ? "--teacher-target"
                                                     : nullptr;
    if (flag) throw InputError(std::string(flag) + " needs --teacher RUN/model.ckpt");
  }
  range("--teacher-samples", static_cast<double>(f.teacher_samples), 0, 1e7);
  if (!(std::isfinite(f.teacher_noise) && f.teacher_noise > 0 && f.teacher_noise <= 10))
    throw InputError("--teacher-noise: " + number(f.teacher_noise) +
                     " is not in (0, 10] (a share of each feature's std)");
  if (f.teacher_target != "score" && f.teacher_target != "probability" && f.teacher_target != "label")
    throw InputError("--teacher-target: unknown value '" + f.teacher_target +
                     "' (known: score, probability, label)");
  return islands;
}

SearchOptions search_options(const Flags& f, int islands) {
  SearchOptions opt;
  opt.ops = OpSet::parse(f.ops, f.complexity);
  opt.ops.parse_forbidden(f.forbid);
  opt.limits.max_complexity = f.max_complexity;
  opt.limits.max_depth = f.max_depth;
  opt.limits.max_length = std::min(kMaxLength, std::max(1, f.max_complexity));
  opt.generations = f.generations, opt.time_limit = f.time_limit, opt.target_loss = f.target_loss;
  opt.islands = islands, opt.population = f.population, opt.threads = f.threads;
  opt.seed = static_cast<uint64_t>(f.seed);
  opt.loss_floor = parse_loss_floor(f.loss_floor);
  return opt;
}

LossKind choose_loss(const Flags& f) {
  const bool distil = !f.teacher.empty();
  LossKind loss;
  if (distil) {  // --classes is implied: the outputs are the teacher's classes
    const bool decisions = f.teacher_target == "label";
    loss = f.loss.empty() ? (decisions ? LossKind::kL2Margin : LossKind::kMse) : parse_loss(f.loss);
    if (decisions && !is_classification_loss(loss))
      throw InputError(
          "--loss: " + f.loss +
          " is for regression; --teacher-target label fits +-1 decisions: use l2_margin or logistic");
    if (!decisions && is_classification_loss(loss))
      throw InputError("--loss: " + f.loss +
                       " needs +-1 labels: add --teacher-target label (the teacher's decisions)");
  } else {
    loss = f.loss.empty() ? (f.classes ? LossKind::kL2Margin : LossKind::kMse) : parse_loss(f.loss);
    if (f.classes && !is_classification_loss(loss))
      throw InputError("--loss: " + f.loss + " is for regression; with --classes use l2_margin or logistic");
    if (!f.classes && is_classification_loss(loss))
      throw InputError("--loss: " + f.loss + " needs +-1 labels: add --classes");
  }
  return loss;
}

std::vector<std::string> export_targets(const Flags& f) {
  std::vector<std::string> exports = split_list(f.exp);
  for (const std::string& e : exports)
    if (e != "c" && e != "hls") throw InputError("--export: unknown target '" + e + "' (known: c, hls)");
  return exports;
}

}  // namespace kiln::symreg
