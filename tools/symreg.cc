// kiln symreg: searches for formulas that fit a CSV file and writes their Pareto front.
//
//   bazel run //tools:symreg -- --data FILE.csv --target COL [--features a,b,c] [--ops "+,-,*,/,sin"]
//       [--complexity sin=2,...] [--max-complexity 30] [--time-limit 60] [--generations N] [--seed 1]
//       [--threads N] [--classes] [--out DIR] [--export c|hls|c,hls]
//
// Prints one line per generation (stderr), then the front of each output as a table (stdout), and writes
// DIR/front.json, front.csv, front.svg, predictions.csv (the test rows and the selected expressions'
// predictions) and, with --export, model.c / model_hls.cpp. Bad input prints one
// line "kiln symreg: error: ..." and exits with status 1.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "engine/check.h"
#include "engine/data/loaders.h"
#include "engine/utf8.h"
#include "engine/metrics.h"
#include "symreg/codegen.h"
#include "symreg/lut.h"
#include "symreg/search.h"
#include "tools/progress.h"
#include "tools/run_dir.h"
#include "tools/symreg_report.h"
#include "tools/tool_main.h"

namespace kiln::symreg {
namespace {

using kiln::InputError;

struct Flags {
  std::string data, target, features, ops = "+,-,*,/", complexity, forbid, out = "runs/symreg", exp, loss,
                                      select = "best", weights, function = "kiln_symreg",
                                      hls_type = "ap_fixed<16, 6>";
  int max_complexity = 30, max_depth = 10, generations = 100, threads = 1, islands = 4, population = 100,
      lut_size = 1024;
  double time_limit = 0, test_split = 0.2, target_loss = -1;
  int64_t seed = 1;
  bool classes = false, no_header = false, quiet = false, overwrite = false;
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

// Every numeric flag, before any data is read: CLI11 only checks that the text converts, and the search
// treats some bad values as others (--threads -2 as all cores, --time-limit nan as no limit). The upper
// bounds keep a typo from becoming hours of work or an allocation failure.
void check_flags(const Flags& f) {
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
  range("--population", f.population, 2, 100000, " (per island)");
  if (static_cast<int64_t>(f.islands) * f.population > 1000000)
    throw InputError("--population: " + std::to_string(f.population) + " x --islands " +
                     std::to_string(f.islands) + " = " +
                     std::to_string(static_cast<int64_t>(f.islands) * f.population) +
                     " expressions; at most 1000000");
  if (f.seed < 0) throw InputError("--seed: " + std::to_string(f.seed) + " is negative (a seed is >= 0)");
  if (!(f.test_split >= 0 && f.test_split < 1))
    throw InputError("--test-split: " + number(f.test_split) + " is not in [0, 1)");
  if (!std::isfinite(f.target_loss))
    throw InputError("--target-loss: " + number(f.target_loss) + " is not a finite number (< 0 = off)");
  set_lut_size(f.lut_size);  // checks it is in [2, 65536]
}

int run(const Flags& f) {
  check_flags(f);
  const std::string hls_type = hls_fixed_type(f.hls_type, "--hls-type");
  check_function_name(f.function, "--function");
  RunDir::check(f.out, "kiln symreg", f.overwrite);  // before the search, not after it

  // ---- data ----
  data::CsvOptions co;
  co.path = f.data;
  co.header = !f.no_header;
  co.label = f.target;
  co.features = split_list(f.features);
  if (!f.weights.empty() && !co.features.empty()) co.features.push_back(f.weights);
  co.regression = !f.classes;
  data::Dataset d = data::load_csv(co);
  if (d.size() == 0) throw InputError(f.data + ": no data rows");
  for (const auto& n : d.feature_names) require_utf8(n, f.data + ":1: column name");  // header names, into JSON and C
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
  data::Split sp = data::split(d, 0, f.test_split, static_cast<uint64_t>(f.seed));
  const data::Dataset& test_d = sp.test.size() ? sp.test : sp.train;
  auto strip = [&](const data::Dataset& s, std::vector<float>& w) {
    int F = static_cast<int>(names.size());
    Columns c(s.size(), F);
    for (int64_t r = 0; r < s.size(); ++r) {
      for (int k = 0; k < F; ++k) c.col(k)[r] = s.x.data()[r * (F + 1) + k];
      if (!weights_all.empty()) w.push_back(weights_all[static_cast<size_t>(s.x.data()[r * (F + 1) + F])]);
    }
    return c;
  };
  std::vector<float> w_train, w_test;
  Columns x_train = strip(sp.train, w_train), x_test = strip(test_d, w_test);

  // ---- options ----
  SearchOptions opt;
  opt.ops = OpSet::parse(f.ops, f.complexity);
  opt.ops.parse_forbidden(f.forbid);
  opt.limits.max_complexity = f.max_complexity;
  opt.limits.max_depth = f.max_depth;
  opt.limits.max_length = std::min(kMaxLength, std::max(1, f.max_complexity));
  opt.generations = f.generations, opt.time_limit = f.time_limit, opt.target_loss = f.target_loss;
  opt.islands = f.islands, opt.population = f.population, opt.threads = f.threads;
  opt.seed = static_cast<uint64_t>(f.seed);
  LossKind loss = f.loss.empty() ? (f.classes ? LossKind::kL2Margin : LossKind::kMse) : parse_loss(f.loss);
  if (f.classes && !is_classification_loss(loss))
    throw InputError("--loss: " + f.loss + " is for regression; with --classes use l2_margin or logistic");
  if (!f.classes && is_classification_loss(loss))
    throw InputError("--loss: " + f.loss + " needs +-1 labels: add --classes");
  Selection sel = parse_selection(f.select);
  std::vector<std::string> exports = split_list(f.exp);
  for (const std::string& e : exports)
    if (e != "c" && e != "hls") throw InputError("--export: unknown target '" + e + "' (known: c, hls)");

  // ---- one search per output ----
  struct Target {
    std::string name;
    std::vector<float> y_train, y_test;
  };
  std::vector<Target> targets;
  if (!f.classes) {
    Target t{f.target.empty() ? "target" : f.target, {}, {}};
    for (int64_t r = 0; r < sp.train.size(); ++r) t.y_train.push_back(sp.train.targets.data()[r]);
    for (int64_t r = 0; r < test_d.size(); ++r) t.y_test.push_back(test_d.targets.data()[r]);
    targets.push_back(t);
  } else {
    int C = d.num_classes();
    if (C < 2)
      throw InputError(f.data + ": --classes needs at least 2 classes, the target '" + f.target + "' has " +
                       std::to_string(C));
    // Two classes: one expression, class 1 against class 0 (a binary logit); more: one per class.
    for (int c = (C == 2 ? 1 : 0); c < C; ++c) {
      Target t{"class " + d.class_names[static_cast<size_t>(c)], {}, {}};
      for (int l : sp.train.labels) t.y_train.push_back(l == c ? 1.0f : -1.0f);
      for (int l : test_d.labels) t.y_test.push_back(l == c ? 1.0f : -1.0f);
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
  if (!f.quiet)
    std::cerr << "data: " << x_train.rows() << " train / " << (sp.test.size() ? x_test.rows() : 0)
              << " test rows, " << names.size() << " features (" << f.data << "); ops " << opt.ops.names()
              << "; loss " << loss_name(loss) << "\n";

  RunDir rd(f.out, "kiln symreg", f.overwrite);
  try {
    std::vector<Output> outs;
    Evaluator ev;
    for (size_t k = 0; k < targets.size(); ++k) {
      Problem pb{&x_train, targets[k].y_train, w_train, loss};
      SearchOptions o = opt;
      o.seed = opt.seed + 1000003ull * k;
      auto progress = [&](const GenerationStats& g) {
        if (f.quiet) return;
        char buf[200];
        std::snprintf(buf, sizeof buf, "%s gen %d%s best loss %.6g front %zu %s node evals/s time %s\n",
                      targets[k].name.c_str(), g.generation,
                      opt.generations > 0 ? ("/" + std::to_string(opt.generations)).c_str() : "", g.best_loss,
                      g.front_size, compact_number(g.node_evals_per_second).c_str(),
                      format_duration(g.seconds).c_str());
        std::cerr << buf;
      };
      SearchResult r = search(pb, o, progress);
      if (r.front.empty())
        throw InputError(f.data + ": no expression with a finite loss was found for " + targets[k].name);
      Output out;
      out.name = targets[k].name, out.classification = f.classes, out.loss = loss_name(loss);
      out.front = r.front, out.generations = r.generations, out.seconds = r.seconds,
      out.stop_reason = r.stop_reason;
      for (const Candidate& c : r.front) {
        out.train_metric.push_back(metric(c.tree, x_train, targets[k].y_train, f.classes, ev));
        out.test_metric.push_back(metric(c.tree, x_test, targets[k].y_test, f.classes, ev));
      }
      out.selected = select(r.front, sel);
      std::cout << front_table(out, names) << "\n";
      outs.push_back(std::move(out));
    }
    // The test rows with the selected expressions' predictions (engine, float32, %.9g round-trips), so that
    // exported code can be checked against the engine row by row.
    {
      std::string csv;
      for (const std::string& n : names) csv += n + ",";
      for (size_t k = 0; k < outs.size(); ++k)
        csv += "pred_" + c_identifier(outs[k].name) + (k + 1 < outs.size() ? "," : "\n");
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
                        k + 1 < preds.size() ? "," : "\n"),
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
                       std::to_string(c.loss) + (f.classes ? ", test AUC " : ", test R^2 ") +
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
  app.add_option("--islands", f.islands, "populations, 1 to 1024 (default 4)");
  app.add_option("--population", f.population,
                 "expressions per island, 2 to 100000; islands x population <= 1e6 (default 100)");
  app.add_flag("--classes", f.classes, "the target is a class label: one expression per class (one-vs-rest)");
  app.add_option("--loss", f.loss, "mse, mae (regression); l2_margin (default with --classes), logistic");
  app.add_option("--weights", f.weights, "column of sample weights (>= 0)");
  app.add_option("--select", f.select, "model to export: best (default), accuracy, score");
  app.add_option("--test-split", f.test_split,
                 "fraction of rows held out for the test metrics (default 0.2)");
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
  app.add_flag("--quiet", f.quiet, "no progress lines");
  app.add_flag("--overwrite", f.overwrite,
               "replace an earlier run in --out (kept until the new run is complete)");
  return kiln::run_tool("kiln symreg", app, argc, argv, [&] { return kiln::symreg::run(f); });
}
