// kiln symreg: searches for formulas that fit a CSV file and writes their Pareto front.
//
//   bazel run //tools:symreg -- --data FILE.csv --target COL [--features a,b,c] [--ops "+,-,*,/,sin"]
//       [--complexity sin=2,...] [--max-complexity 30] [--time-limit 60] [--generations N] [--seed 1]
//       [--threads N] [--classes] [--out DIR] [--export c|hls|c,hls]
//       [--teacher RUN/model.ckpt [--teacher-target score|probability|label] [--teacher-samples N]]
//   mpirun -np N bazel-bin/tools/symreg --islands-per-rank K ...        (or srun under Slurm)
//
// --teacher distils a trained classifier into formulas: the labels of the search are the network's outputs
// (by default its score, the one-vs-rest logit of each class; see teacher_score) on the training rows and,
// with --teacher-samples, on extra inputs sampled around them, while every front entry and the network itself
// are judged by their AUC against the CSV's true labels on the test rows (the teacher's own test split).
//
// Prints one line per generation (stderr), then the front of each output as a table (stdout), and writes
// DIR/front.json, front.csv, front.svg, predictions.csv (the test rows and the selected expressions'
// predictions) and, with --export, model.c / model_hls.cpp. Bad input prints one
// line "kiln symreg: error: ..." and exits with status 1.
//
// Over MPI (`mpirun -np N symreg ... --islands-per-rank K`, or Slurm's srun) the N ranks evolve N * K islands
// and trade migrants and hall-of-fame entries (symreg/exchange.h): the front is the one of a single process
// with --islands N*K and the same seed. Every rank reads the data; rank 0 alone prints and writes.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>

#include "dist/comm.h"
#include "engine/autograd.h"
#include "engine/check.h"
#include "engine/config.h"
#include "engine/data/loaders.h"
#include "engine/metrics.h"
#include "engine/train/checkpoint.h"
#include "engine/utf8.h"
#include "symreg/codegen.h"
#include "symreg/lut.h"
#include "symreg/search.h"
#include "tools/progress.h"
#include "tools/run_dir.h"
#include "tools/symreg_mpi.h"
#include "tools/symreg_report.h"
#include "tools/tool_main.h"

namespace kiln::symreg {
namespace {

using kiln::InputError;

struct Flags {
  std::string data, target, features, ops = "+,-,*,/", complexity, forbid, out = "runs/symreg", exp, loss,
                                      select = "best", loss_floor = "auto", weights, function = "kiln_symreg",
                                      hls_type = "ap_fixed<16, 6>", teacher, teacher_target = "score";
  int max_complexity = 30, max_depth = 10, generations = 100, threads = 1, islands = 4, population = 100,
      lut_size = 1024, islands_per_rank = 0;  // 0: --islands in all, shared by the ranks
  double time_limit = 0, test_split = 0.2, target_loss = -1, teacher_noise = 0.1;
  int64_t seed = 1, teacher_samples = 0;
  bool classes = false, no_header = false, quiet = false, overwrite = false;
  bool test_split_given =
      false;  // --test-split on the command line (with --teacher it overrides the teacher's)
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) v.push_back(item);
  return v;
}

double r2(const float* pred, const float* y, int64_t n) {
  double mean = 0, sse = 0, sst = 0;
  for (int64_t r = 0; r < n; ++r) mean += y[r];
  mean /= static_cast<double>(n);
  for (int64_t r = 0; r < n; ++r) {
    if (!std::isfinite(pred[r])) return NAN;
    sse += (pred[r] - y[r]) * double(pred[r] - y[r]), sst += (y[r] - mean) * double(y[r] - mean);
  }
  return sst > 0 ? 1 - sse / sst : NAN;
}

double auc(const float* pred, const std::vector<float>& y_pm, int64_t n) {
  Tensor scores({n, 1});
  std::vector<int> labels;
  for (int64_t r = 0; r < n; ++r) {
    if (!std::isfinite(pred[r])) return NAN;
    scores.data()[r] = pred[r], labels.push_back(y_pm[r] > 0);
  }
  return roc_auc_one_vs_rest(scores, labels)[0];
}

double metric(const Tree& t, const Columns& x, const std::vector<float>& y, bool classification,
              Evaluator& ev) {
  AlignedFloats p(static_cast<size_t>(x.padded()));
  ev.predict(t, x, p.data());
  return classification ? auc(p.data(), y, x.rows()) : r2(p.data(), y.data(), x.rows());
}

// Shortest text that reads back as v ("nan", "inf", "0.1", "10000000", "1e+300"), for messages.
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

// --loss-floor: "auto" (-1: the search computes the targets' float noise floor) or a number >= 0.
double parse_loss_floor(const std::string& s) {
  if (s == "auto") return -1;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(std::isfinite(v) && v >= 0))
    throw InputError("--loss-floor: '" + s + "' is not auto or a finite number >= 0");
  return v;
}

// Every numeric flag, before any data is read: CLI11 only checks that the text converts, and the search
// treats some bad values as others (--threads -2 as all cores, --time-limit nan as no limit). The upper
// bounds keep a typo from becoming hours of work or an allocation failure. Returns the islands in all, over
// `ranks` ranks.
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

// ---- --teacher: a trained classifier as the oracle ----

// The network, the CSV columns it reads (raw, every row of the file, in file order) and how its classes map
// onto the CSV's labels.
struct Teacher {
  train::Checkpoint ck;
  std::unique_ptr<nn::Model> model;
  int outputs = 0;                  // 1 (a binary logit) or one per class
  data::Dataset rows;               // its feature columns of every CSV row, raw; labels = the CSV's classes
  std::vector<int> class_of_label;  // CSV class index -> teacher class index
  double test_split = 0.2;          // its run's data.test_split (the split seed is ck.seed)
  int64_t max_samples = 0;          // its run's data.max_samples (> 0: it saw a subset)
  std::string data_path;            // its run's data.path
};

// The network (before the data: a regression model is refused before its CSV is read as classes).
Teacher load_teacher(const Flags& f) {
  Teacher t;
  t.ck = train::load_checkpoint(f.teacher);  // errors name the file: missing, truncated, corrupt, foreign
  const std::string& p = f.teacher;
  if (t.ck.task != "classification")
    throw InputError(
        "--teacher: " + p + " is a " + t.ck.task +
        " model; --teacher needs a classifier (its outputs become the labels, the test metric is AUC)");
  if (t.ck.feature_names.empty() ||
      t.ck.input_shape != Shape{static_cast<int64_t>(t.ck.feature_names.size())})
    throw InputError("--teacher: " + p + " takes inputs of shape " + shape_str(t.ck.input_shape) +
                     ", not a row of named CSV features (was it trained on CSV data?)");
  const int C = static_cast<int>(t.ck.class_names.size());
  if (C < 2)
    throw InputError("--teacher: " + p + " has " + std::to_string(C) + " classes; it needs at least 2");
  if (!t.ck.config_yaml.empty()) {
    try {  // the data section of the run it was trained by: its test split, to test on rows it never saw
      Config data = Config::parse(t.ck.config_yaml, p + " (run config)").child("data");
      t.test_split = data.get<double>("test_split", t.test_split);
      t.max_samples = data.get<int64_t>("max_samples", 0);
      t.data_path = data.get<std::string>("path", "");
    } catch (const std::exception&) {
      // The stored config is informational; without it the split falls back to the defaults.
    }
  }
  try {
    t.model = train::restore_model(t.ck);
  } catch (const InputError& e) {
    throw InputError("--teacher: " + std::string(e.what()) +
                     " (symreg reads float teachers; a compressed run's checkpoint is not supported)");
  }
  const int64_t outs = shape_numel(t.model->output_shape());
  if (!(outs == C || (outs == 1 && C == 2)))
    throw InputError("--teacher: " + p + " gives " + std::to_string(outs) + " outputs for " +
                     std::to_string(C) + " classes");
  t.outputs = static_cast<int>(outs);
  return t;
}

// Its feature columns of every row of --data, raw, with the CSV's labels mapped onto its classes.
void load_teacher_rows(const Flags& f, Teacher& t) {
  const std::string& p = f.teacher;
  // Its feature columns, by name (with --no-header the names are col0, col1, ...: column indices).
  data::CsvOptions co;
  co.path = f.data;
  co.header = !f.no_header;
  co.label = f.target;
  for (const std::string& n : t.ck.feature_names)
    co.features.push_back(!co.header && n.rfind("col", 0) == 0 ? n.substr(3) : n);
  try {
    t.rows = data::load_csv(co);
  } catch (const InputError& e) {
    throw InputError("--teacher " + p + " reads the columns it was trained on: " + e.what());
  }
  for (const std::string& n : t.rows.class_names) {
    auto it = std::find(t.ck.class_names.begin(), t.ck.class_names.end(), n);
    if (it == t.ck.class_names.end()) {
      throw InputError(f.data + ": class '" + n + "' of the target '" + f.target +
                       "' is not one of the teacher's (" + join(t.ck.class_names) + ")");
    }
    t.class_of_label.push_back(static_cast<int>(it - t.ck.class_names.begin()));
  }
}

// The network's outputs for raw rows x [n, F] (standardised with the checkpoint's standardiser first).
Tensor teacher_outputs(Teacher& t, Tensor xs) {
  if (!t.ck.standardizer.empty()) t.ck.standardizer.apply(xs);
  return t.model->predict(xs, "", 4096);  // inference: dropout off, batch norm on its running statistics
}

// The teacher's score for class c: its one-vs-rest logit log(p_c / (1 - p_c)) = z_c - log sum_{j != c} exp
// z_j, which is z_1 - z_0 for two softmax outputs and the output itself for one (a sigmoid's logit, class 1).
// A monotone function of p_c, so it ranks the rows (its AUC) exactly as the network does; unlike p_c it does
// not saturate, so a formula fitted to it by MSE learns the network's ordering of confident rows too.
double teacher_score(const float* z, int outputs, int c) {
  if (outputs == 1) return z[0];
  double m = -INFINITY;
  for (int j = 0; j < outputs; ++j)
    if (j != c) m = std::max(m, double(z[j]));
  double s = 0;
  for (int j = 0; j < outputs; ++j)
    if (j != c) s += std::exp(z[j] - m);
  return z[c] - (m + std::log(s));
}

// What the search fits for class c: the score, the probability sigmoid(score), or the network's hard
// decision +-1 (for the classification losses).
float teacher_label(double score, const std::string& kind) {
  if (kind == "probability") return static_cast<float>(1 / (1 + std::exp(-score)));
  if (kind == "label") return score > 0 ? 1.0f : -1.0f;
  return static_cast<float>(score);
}

int run(const Flags& f, dist::Comm& comm, RankPhase& phase) {
  const int islands = check_flags(f, comm.size());
  const std::string hls_type = hls_fixed_type(f.hls_type, "--hls-type");
  check_function_name(f.function, "--function");
  const bool lead = comm.rank() == 0;  // rank 0 prints and writes; the other ranks only search
  const bool quiet = f.quiet || !lead;
  if (lead) RunDir::check(f.out, "kiln symreg", f.overwrite);  // before the search, not after it

  // ---- data ----
  data::CsvOptions co;
  co.path = f.data;
  co.header = !f.no_header;
  co.label = f.target;
  co.features = split_list(f.features);
  if (!f.weights.empty() && !co.features.empty()) co.features.push_back(f.weights);
  const bool distil = !f.teacher.empty();
  Teacher teacher;
  if (distil) teacher = load_teacher(f);
  co.regression = !f.classes && !distil;  // a teacher's test metric is AUC against the class labels
  data::Dataset d = data::load_csv(co);
  if (d.size() == 0) throw InputError(f.data + ": no data rows");
  for (const auto& n : d.feature_names)
    require_utf8(n, f.data + ":1: column name");  // header names, into JSON and C
  for (const auto& n : d.class_names) require_utf8(n, f.data + ": class label");
  std::vector<std::string> names = d.feature_names;
  std::vector<float> weights_all;
  if (!f.weights.empty()) {  // the weight column came in as a feature: take it out
    auto it = std::find(names.begin(), names.end(), f.weights);
    if (it == names.end()) throw InputError("--weights: no column '" + f.weights + "' in " + f.data);
    int wc = static_cast<int>(it - names.begin()), F = static_cast<int>(names.size());
    std::vector<float> x;
    for (int64_t r = 0; r < d.size(); ++r) {
      float w = d.x.data()[r * F + wc];
      if (!(w >= 0))
        throw InputError("--weights: column '" + f.weights + "' row " + std::to_string(r + 1) + " holds " +
                         std::to_string(w) + ", weights must be >= 0");
      weights_all.push_back(w);
      for (int c = 0; c < F; ++c)
        if (c != wc) x.push_back(d.x.data()[r * F + c]);
    }
    names.erase(it);
    d.x = Tensor({d.size(), F - 1}, x);
    d.feature_names = names;
  }
  if (names.empty()) throw InputError(f.data + ": no feature columns besides the target '" + f.target + "'");
  // The split shuffles rows; weights follow through an index column appended to x.
  {
    int F = static_cast<int>(names.size());
    std::vector<float> x;
    for (int64_t r = 0; r < d.size(); ++r) {
      for (int c = 0; c < F; ++c) x.push_back(d.x.data()[r * F + c]);
      x.push_back(static_cast<float>(r));
    }
    d.x = Tensor({d.size(), F + 1}, x);
  }
  // With a teacher the split is its run's (its seed and, unless --test-split is given, its test fraction): on
  // the file it was trained on the test rows are the ones it was tested on, never trained on.
  uint64_t split_seed = static_cast<uint64_t>(f.seed);
  double test_split = f.test_split;
  if (distil) {
    load_teacher_rows(f, teacher);
    if (teacher.rows.size() != d.size())  // the same file read twice
      throw InputError(f.data + ": read " + std::to_string(teacher.rows.size()) + " rows for the teacher, " +
                       std::to_string(d.size()) + " for the search");
    split_seed = teacher.ck.seed;
    if (!f.test_split_given) test_split = teacher.test_split;
    if (!(test_split >= 0 && test_split < 1))
      throw InputError("--teacher: " + f.teacher + ": its test_split " + number(test_split) +
                       " is not in [0, 1); give --test-split");
  }
  data::Split sp = data::split(d, 0, test_split, split_seed);
  const data::Dataset& test_d = sp.test.size() ? sp.test : sp.train;
  // The columns of the search, the rows' weights and their row numbers in the file (the appended column).
  auto strip = [&](const data::Dataset& s, std::vector<float>& w, std::vector<int64_t>& rows) {
    int F = static_cast<int>(names.size());
    Columns c(s.size(), F);
    for (int64_t r = 0; r < s.size(); ++r) {
      for (int k = 0; k < F; ++k) c.col(k)[r] = s.x.data()[r * (F + 1) + k];
      rows.push_back(static_cast<int64_t>(s.x.data()[r * (F + 1) + F]));
      if (!weights_all.empty()) w.push_back(weights_all[static_cast<size_t>(rows.back())]);
    }
    return c;
  };
  std::vector<float> w_train, w_test;
  std::vector<int64_t> train_rows, test_rows;
  Columns x_train = strip(sp.train, w_train, train_rows), x_test = strip(test_d, w_test, test_rows);

  // ---- options ----
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
  Selection sel = parse_selection(f.select);
  std::vector<std::string> exports = split_list(f.exp);
  for (const std::string& e : exports)
    if (e != "c" && e != "hls") throw InputError("--export: unknown target '" + e + "' (known: c, hls)");

  // ---- one search per output ----
  // y_fit: the labels of the search (the training rows, then any sampled inputs); y_train, y_test: what the
  // metrics compare with (the same labels, or with a teacher the true +-1 labels); teacher_*: its scores.
  struct Target {
    std::string name;
    std::vector<float> y_train, y_test, y_fit, teacher_train, teacher_test;
    std::string fitted_to;
  };
  std::vector<Target> targets;
  const Columns* x_fit = &x_train;
  Columns x_sampled;
  std::vector<float> w_fit = w_train;
  if (distil) {
    const train::Checkpoint& ck = teacher.ck;
    const int C = static_cast<int>(ck.class_names.size()), Ft = static_cast<int>(ck.feature_names.size());
    const Tensor z = teacher_outputs(teacher, teacher.rows.x);
    const int O = teacher.outputs;
    // Inputs sampled around the training rows: a random training row plus Gaussian noise of --teacher-noise
    // times each feature's std (over the training rows), the same noise for a column the search and the
    // teacher both read; labelled by the teacher.
    const int64_t n = x_train.rows(), S = f.teacher_samples;
    std::vector<float> xs_teacher;
    if (S > 0) {
      const int F = static_cast<int>(names.size());
      auto stdev = [n](const std::function<float(int64_t)>& v) {
        double m = 0, q = 0;
        for (int64_t r = 0; r < n; ++r) m += v(r);
        m /= static_cast<double>(n);
        for (int64_t r = 0; r < n; ++r) q += (v(r) - m) * (v(r) - m);
        return std::sqrt(q / static_cast<double>(n));
      };
      std::vector<double> sd(static_cast<size_t>(F)), sd_t(static_cast<size_t>(Ft));
      std::vector<int> shared(static_cast<size_t>(Ft),
                              -1);  // teacher column -> the search's column of that name
      for (int k = 0; k < F; ++k) sd[k] = stdev([&](int64_t r) { return x_train.col(k)[r]; });
      for (int k = 0; k < Ft; ++k) {
        sd_t[k] = stdev([&](int64_t r) { return teacher.rows.x.data()[train_rows[r] * Ft + k]; });
        auto it = std::find(names.begin(), names.end(), teacher.rows.feature_names[static_cast<size_t>(k)]);
        if (it != names.end()) shared[k] = static_cast<int>(it - names.begin());
      }
      x_sampled = Columns(n + S, F);
      for (int k = 0; k < F; ++k) std::copy_n(x_train.col(k), n, x_sampled.col(k));
      xs_teacher.resize(static_cast<size_t>(S * Ft));
      std::mt19937_64 rng(static_cast<uint64_t>(f.seed) ^ 0x7eac4e55a3b1ULL);
      std::uniform_int_distribution<int64_t> pick(0, n - 1);
      std::normal_distribution<double> normal(0.0, 1.0);
      std::vector<double> noise(static_cast<size_t>(F));
      for (int64_t i = 0; i < S; ++i) {
        const int64_t r = pick(rng);
        for (int k = 0; k < F; ++k) {
          noise[k] = normal(rng) * f.teacher_noise * sd[k];
          x_sampled.col(k)[n + i] = static_cast<float>(x_train.col(k)[r] + noise[k]);
        }
        for (int k = 0; k < Ft; ++k) {
          const double e = shared[k] >= 0 ? noise[shared[k]] : normal(rng) * f.teacher_noise * sd_t[k];
          xs_teacher[i * Ft + k] = static_cast<float>(teacher.rows.x.data()[train_rows[r] * Ft + k] + e);
        }
        if (!w_train.empty()) w_fit.push_back(w_train[r]);
      }
      x_fit = &x_sampled;
    }
    const Tensor zs = S > 0 ? teacher_outputs(teacher, Tensor({S, Ft}, xs_teacher)) : Tensor();
    // Two classes: one output, the second class against the first (as --classes); more: one per class.
    for (int c = (C == 2 ? 1 : 0); c < C; ++c) {
      Target t;
      const std::string& cn = ck.class_names[static_cast<size_t>(c)];
      t.name = "class " + cn;
      if (f.teacher_target == "label")
        t.fitted_to = "teacher decisions +-1";
      else if (f.teacher_target == "probability")
        t.fitted_to = "teacher probability p_" + cn;
      else
        t.fitted_to = O == 1   ? "teacher logit"
                      : O == 2 ? "teacher score z_" + cn + " - z_" + ck.class_names[0]
                               : "teacher score z_" + cn + " - logsumexp(other z)";
      auto truth = [&](int64_t row) {
        return teacher.class_of_label[static_cast<size_t>(teacher.rows.labels[static_cast<size_t>(row)])] == c
                   ? 1.0f
                   : -1.0f;
      };
      for (int64_t row : train_rows) {
        const double sc = teacher_score(z.data() + row * O, O, c);
        t.y_fit.push_back(teacher_label(sc, f.teacher_target));
        t.y_train.push_back(truth(row)), t.teacher_train.push_back(static_cast<float>(sc));
      }
      for (int64_t i = 0; i < S; ++i)
        t.y_fit.push_back(teacher_label(teacher_score(zs.data() + i * O, O, c), f.teacher_target));
      for (int64_t row : test_rows) {
        t.y_test.push_back(truth(row));
        t.teacher_test.push_back(static_cast<float>(teacher_score(z.data() + row * O, O, c)));
      }
      targets.push_back(t);
    }
  } else if (!f.classes) {
    Target t;
    t.name = f.target.empty() ? "target" : f.target;
    for (int64_t r = 0; r < sp.train.size(); ++r) t.y_train.push_back(sp.train.targets.data()[r]);
    for (int64_t r = 0; r < test_d.size(); ++r) t.y_test.push_back(test_d.targets.data()[r]);
    t.y_fit = t.y_train;
    targets.push_back(t);
  } else {
    int C = d.num_classes();
    if (C < 2)
      throw InputError(f.data + ": --classes needs at least 2 classes, the target '" + f.target + "' has " +
                       std::to_string(C));
    // Two classes: one expression, class 1 against class 0 (a binary logit); more: one per class.
    for (int c = (C == 2 ? 1 : 0); c < C; ++c) {
      Target t;
      t.name = "class " + d.class_names[static_cast<size_t>(c)];
      for (int l : sp.train.labels) t.y_train.push_back(l == c ? 1.0f : -1.0f);
      for (int l : test_d.labels) t.y_test.push_back(l == c ? 1.0f : -1.0f);
      t.y_fit = t.y_train;
      targets.push_back(t);
    }
  }
  // The exported functions' names, checked before the search: --function itself for one output, else
  // --function_CLASS, CLASS made an identifier (it comes from the data) without creating a reserved "__".
  std::vector<std::string> functions;
  for (const Target& t : targets) {
    if (targets.size() == 1) {
      functions.push_back(f.function);
      continue;
    }
    std::string suffix;
    for (char c : t.name.substr(t.name.find(' ') + 1)) {
      const bool keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (keep || (!suffix.empty() && suffix.back() != '_')) suffix += keep ? c : '_';
    }
    std::string name = f.function + "_" + suffix;
    check_function_name(name, "--function");
    for (size_t k = 0; k < functions.size(); ++k)
      if (functions[k] == name)
        throw InputError("--function: " + targets[k].name + " and " + t.name + " would both export '" + name +
                         "'; rename a class in " + f.data);
    functions.push_back(name);
  }
  if (!quiet)
    std::cerr << "data: " << x_train.rows() << " train"
              << (x_fit->rows() > x_train.rows()
                      ? " (+" + std::to_string(x_fit->rows() - x_train.rows()) + " sampled)"
                      : std::string())
              << " / " << (sp.test.size() ? x_test.rows() : 0) << " test rows, " << names.size()
              << " features (" << f.data << "); ops " << opt.ops.names() << "; loss " << loss_name(loss)
              << "\n";
  if (distil) {
    const train::Checkpoint& ck = teacher.ck;
    if (!quiet)
      std::cerr << "teacher: " << f.teacher << " (" << ck.feature_names.size() << " features, "
                << teacher.outputs << (teacher.outputs == 1 ? " output" : " outputs") << ", classes "
                << join(ck.class_names) << "); labels: " << targets[0].fitted_to
                << (targets.size() > 1 ? " (per class)" : "") << "; test rows: its split (seed " << ck.seed
                << ", " << number(test_split) << ")\n";
    // Cases where the test rows may hold rows the teacher trained on (its AUC then flatters it).
    auto base = [](const std::string& p) { return p.substr(p.find_last_of('/') + 1); };
    std::string notes;
    if (teacher.max_samples > 0)
      notes += "note: the teacher was trained on a subset (max_samples " +
               std::to_string(teacher.max_samples) + "): the test rows may include rows it trained on\n";
    if (test_split > teacher.test_split)
      notes += "note: --test-split " + number(test_split) + " is above the teacher's " +
               number(teacher.test_split) + ": the test rows include rows it trained on\n";
    if (!teacher.data_path.empty() && base(teacher.data_path) != base(f.data))
      notes += "note: the teacher was trained on " + teacher.data_path +
               ": if that is another file, its test AUC here is on rows it may have seen\n";
    if (lead) std::cerr << notes;
  }

  // ---- the searches: on every rank; then rank 0 reports and writes ----
  CommExchange exchange(comm);
  if (comm.distributed()) opt.exchange = &exchange;
  if (!quiet && comm.distributed())
    std::cerr << "ranks: " << comm.size() << " x " << islands / comm.size() << " islands (" << comm.backend()
              << "), " << islands << " islands in all, " << f.threads
              << (f.threads == 1 ? " thread" : " threads") << " per rank\n";
  auto search_target = [&](size_t k, const std::function<void(const GenerationStats&)>& progress) {
    Problem pb{x_fit, targets[k].y_fit, w_fit, loss};
    SearchOptions o = opt;
    o.seed = opt.seed + 1000003ull * k;
    return search(pb, o, progress);
  };
  if (!setup_done(comm, phase)) return 1;  // another rank's input failed: rank 0 says which
  if (!lead) {
    for (size_t k = 0; k < targets.size(); ++k)
      if (search_target(k, {}).front.empty()) return phase = RankPhase::kDone, 1;  // as rank 0 stops
    phase = RankPhase::kDone;
    return 0;
  }
  RunDir rd(f.out, "kiln symreg", f.overwrite);
  try {
    std::vector<Output> outs;
    Evaluator ev;
    for (size_t k = 0; k < targets.size(); ++k) {
      auto progress = [&](const GenerationStats& g) {
        if (quiet) return;
        char buf[200];
        std::snprintf(buf, sizeof buf, "%s gen %d%s best loss %.6g front %zu %s node evals/s time %s\n",
                      targets[k].name.c_str(), g.generation,
                      opt.generations > 0 ? ("/" + std::to_string(opt.generations)).c_str() : "", g.best_loss,
                      g.front_size, compact_number(g.node_evals_per_second).c_str(),
                      format_duration(g.seconds).c_str());
        std::cerr << buf;
      };
      SearchResult r = search_target(k, progress);
      if (k + 1 == targets.size() || r.front.empty()) phase = RankPhase::kDone;  // no more collectives
      if (r.front.empty())
        throw InputError(f.data + ": no expression with a finite loss was found for " + targets[k].name);
      Output out;
      out.name = targets[k].name, out.classification = f.classes || distil, out.loss = loss_name(loss);
      out.front = r.front, out.generations = r.generations, out.seconds = r.seconds,
      out.stop_reason = r.stop_reason;
      out.node_evals = r.node_evals, out.ranks = comm.size(), out.islands = islands;
      for (const Candidate& c : r.front) {
        out.train_metric.push_back(metric(c.tree, x_train, targets[k].y_train, out.classification, ev));
        out.test_metric.push_back(metric(c.tree, x_test, targets[k].y_test, out.classification, ev));
      }
      if (distil) {
        out.teacher = true, out.fitted_to = targets[k].fitted_to;
        out.teacher_train_auc = auc(targets[k].teacher_train.data(), targets[k].y_train, x_train.rows());
        out.teacher_test_auc = auc(targets[k].teacher_test.data(), targets[k].y_test, x_test.rows());
      }
      out.selected = select(r.front, sel, r.loss_floor);
      std::cout << front_table(out, names) << "\n";
      outs.push_back(std::move(out));
    }
    // The test rows with the selected expressions' predictions (engine, float32, %.9g round-trips), so that
    // exported code can be checked against the engine row by row.
    {
      std::string csv;
      for (const std::string& n : names) csv += n + ",";
      for (size_t k = 0; k < outs.size(); ++k)
        csv += "pred_" + c_identifier(outs[k].name) + (k + 1 < outs.size() || distil ? "," : "\n");
      for (size_t k = 0; distil && k < outs.size(); ++k)  // then the teacher's scores
        csv += "teacher_" + c_identifier(outs[k].name) + (k + 1 < outs.size() ? "," : "\n");
      std::vector<AlignedFloats> preds;
      for (const Output& o : outs) {
        preds.emplace_back(static_cast<size_t>(x_test.padded()));
        ev.predict(o.front[o.selected].tree, x_test, preds.back().data());
      }
      char buf[32];
      for (int64_t r = 0; r < x_test.rows(); ++r) {
        for (int c = 0; c < x_test.features(); ++c)
          std::snprintf(buf, sizeof buf, "%.9g,", x_test.col(c)[r]), csv += buf;
        for (size_t k = 0; k < preds.size(); ++k)
          std::snprintf(buf, sizeof buf, "%.9g%s", preds[k][static_cast<size_t>(r)],
                        k + 1 < preds.size() || distil ? "," : "\n"),
              csv += buf;
        for (size_t k = 0; distil && k < targets.size(); ++k)
          std::snprintf(buf, sizeof buf, "%.9g%s", targets[k].teacher_test[static_cast<size_t>(r)],
                        k + 1 < targets.size() ? "," : "\n"),
              csv += buf;
      }
      write_text(rd.path("predictions.csv"), csv);
    }
    write_text(rd.path("front.json"), front_json(outs, names));
    write_text(rd.path("front.csv"), front_csv(outs, names));
    write_front_svg(rd.path("front.svg"), outs);
    std::string written = "front.json, front.csv, front.svg, predictions.csv";
    for (const std::string& e : exports) {
      std::string code;
      for (size_t k = 0; k < outs.size(); ++k) {
        const Candidate& c = outs[k].front[outs[k].selected];
        ExportInfo info;
        info.function = functions[k];
        info.feature_names = names, info.features = static_cast<int>(names.size());
        info.hls_type = hls_type;
        info.comment = outs[k].name + ": complexity " + std::to_string(c.complexity) + ", train loss " +
                       std::to_string(c.loss) + (outs[k].classification ? ", test AUC " : ", test R^2 ") +
                       std::to_string(outs[k].test_metric[outs[k].selected]);
        code += (e == "c" ? export_c(c.tree, info) : export_hls(c.tree, info)) + "\n";
      }
      std::string file = e == "c" ? "model.c" : "model_hls.cpp";
      write_text(rd.path(file), code);
      written += ", " + file;
    }
    rd.commit();
    std::cout << "wrote " << f.out << "/{" << written << "}\n";
  } catch (const std::exception& e) {
    rd.fail(e.what());
    throw;
  }
  return 0;
}

}  // namespace
}  // namespace kiln::symreg

int main(int argc, char** argv) {
  // MPI_Init when launched by mpirun or srun (every rank runs the whole command); else one rank.
  kiln::dist::Comm* comm = kiln::dist::world_or_report(&argc, &argv, "kiln symreg");
  if (!comm) return 1;
  CLI::App app{"kiln symreg: search for formulas that fit a CSV file (symbolic regression)"};
  kiln::symreg::Flags f;
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
  // Ranks > 0 print nothing: rank 0 reports their errors (symreg_mpi.h).
  std::ostringstream held_err, dropped_out;
  std::streambuf *err = std::cerr.rdbuf(), *out = std::cout.rdbuf();
  if (comm->rank() != 0) std::cerr.rdbuf(held_err.rdbuf()), std::cout.rdbuf(dropped_out.rdbuf());
  kiln::symreg::RankPhase phase = kiln::symreg::RankPhase::kSetup;
  int status = kiln::run_tool("kiln symreg", app, argc, argv, [&] {
    f.test_split_given = test_split->count() > 0;
    return kiln::symreg::run(f, *comm, phase);
  });
  std::cerr.rdbuf(err), std::cout.rdbuf(out);
  status = kiln::symreg::finish_rank(*comm, phase, status, held_err.str());
  return status;
}
