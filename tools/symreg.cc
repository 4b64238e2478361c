// kiln symreg: searches for formulas that fit a CSV file and writes their Pareto front.
//
//   bazel run //tools:symreg -- --data FILE.csv --target COL [--features a,b,c] [--ops "+,-,*,/,sin"]
//       [--complexity sin=2,...] [--max-complexity 30] [--time-limit 60] [--generations N] [--seed 1]
//       [--threads N] [--classes] [--out DIR] [--export c|hls|c,hls]
//       [--teacher RUN/model.ckpt [--teacher-target score|probability|label] [--teacher-samples N]]
//   mpirun -np N bazel-bin/tools/symreg --islands-per-rank K ...        (or srun under Slurm)
//
// --teacher distils a trained classifier into formulas: the labels of the search are the network's outputs
// (by default its score, the one-vs-rest logit of each class; see symreg_teacher.cc) on the training rows
// and, with --teacher-samples, on extra inputs sampled around them, while every front entry and the network
// itself are judged by their AUC against the CSV's true labels on the test rows (the teacher's own test
// split).
//
// Prints one line per generation (stderr), then the front of each output as a table (stdout), and writes
// DIR/front.json, front.csv, front.svg, predictions.csv (the test rows and the selected expressions'
// predictions) and, with --export, model.c / model_hls.cpp. Bad input prints one
// line "kiln symreg: error: ..." and exits with status 1.
//
// Over MPI (`mpirun -np N symreg ... --islands-per-rank K`, or Slurm's srun) the N ranks evolve N * K islands
// and trade migrants and hall-of-fame entries (symreg/exchange.h): the front is the one of a single process
// with --islands N*K and the same seed. Every rank reads the data; rank 0 alone prints and writes.
//
// This file is the run's order of events: the checks, the data and targets, the searches, then what rank 0
// prints and writes. The parts live beside it: symreg_flags.h (the command line), symreg_data.h (the CSV and
// the targets), symreg_teacher.h (--teacher), symreg_report.h (tables and files), symreg_mpi.h (the ranks).

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <sstream>

#include "dist/comm.h"
#include "engine/check.h"
#include "engine/metrics.h"
#include "engine/tensor.h"
#include "symreg/codegen.h"
#include "symreg/eval.h"
#include "symreg/search.h"
#include "tools/progress.h"
#include "tools/run_dir.h"
#include "tools/symreg_data.h"
#include "tools/symreg_flags.h"
#include "tools/symreg_mpi.h"
#include "tools/symreg_report.h"
#include "tools/symreg_teacher.h"
#include "tools/tool_main.h"

namespace kiln::symreg {
namespace {

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

int run(const Flags& f, dist::Comm& comm, RankPhase& phase) {
  const int islands = check_flags(f, comm.size());
  const std::string hls_type = hls_fixed_type(f.hls_type, "--hls-type");
  check_function_name(f.function, "--function");
  const bool lead = comm.rank() == 0;  // rank 0 prints and writes; the other ranks only search
  const bool quiet = f.quiet || !lead;
  if (lead) RunDir::check(f.out, "kiln symreg", f.overwrite);  // before the search, not after it

  // ---- data ----
  const bool distil = !f.teacher.empty();
  Teacher teacher;
  if (distil) teacher = load_teacher(f);
  SearchData d = load_search_data(f, distil ? &teacher : nullptr);
  const std::vector<std::string>& names = d.names;
  const Columns &x_train = d.x_train, &x_test = d.x_test;

  // ---- options ----
  SearchOptions opt = search_options(f, islands);
  const LossKind loss = choose_loss(f);
  Selection sel = parse_selection(f.select);
  std::vector<std::string> exports = export_targets(f);

  // ---- one search per output ----
  Targets fit = make_targets(f, d, distil ? &teacher : nullptr);
  const std::vector<Target>& targets = fit.targets;
  const Columns* x_fit = &fit.x_fit(d);
  // The exported functions' names, checked before the search rather than after it.
  std::vector<std::string> outputs;
  for (const Target& t : targets) outputs.push_back(t.name);
  const std::vector<std::string> functions = export_function_names(f.function, outputs, f.data);
  if (!quiet)
    std::cerr << "data: " << x_train.rows() << " train"
              << (x_fit->rows() > x_train.rows()
                      ? " (+" + std::to_string(x_fit->rows() - x_train.rows()) + " sampled)"
                      : std::string())
              << " / " << (d.split.test.size() ? x_test.rows() : 0) << " test rows, " << names.size()
              << " features (" << f.data << "); ops " << opt.ops.names() << "; loss " << loss_name(loss)
              << "\n";
  if (distil) {
    if (!quiet) std::cerr << teacher_summary(f, teacher, targets, d.test_split);
    if (lead) std::cerr << teacher_notes(f, teacher, d.test_split);
  }

  // ---- the searches: on every rank; then rank 0 reports and writes ----
  CommExchange exchange(comm);
  if (comm.distributed()) opt.exchange = &exchange;
  if (!quiet && comm.distributed())
    std::cerr << "ranks: " << comm.size() << " x " << islands / comm.size() << " islands (" << comm.backend()
              << "), " << islands << " islands in all, " << f.threads
              << (f.threads == 1 ? " thread" : " threads") << " per rank\n";
  auto search_target = [&](size_t k, const std::function<void(const GenerationStats&)>& progress) {
    Problem pb{x_fit, targets[k].y_fit, fit.w_fit, loss};
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
    // The test rows with the selected expressions' predictions, so that exported code can be checked against
    // the engine row by row.
    std::vector<const float*> teacher_scores;
    for (size_t k = 0; distil && k < targets.size(); ++k)
      teacher_scores.push_back(targets[k].teacher_test.data());
    write_text(rd.path("predictions.csv"), predictions_csv(outs, names, x_test, teacher_scores, ev));
    write_text(rd.path("front.json"), front_json(outs, names));
    write_text(rd.path("front.csv"), front_csv(outs, names));
    write_front_svg(rd.path("front.svg"), outs);
    std::string written = "front.json, front.csv, front.svg, predictions.csv";
    for (const std::string& e : exports) {
      std::string file = e == "c" ? "model.c" : "model_hls.cpp";
      write_text(rd.path(file), export_code(e, outs, functions, names, hls_type));
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
  CLI::Option* test_split = kiln::symreg::add_flags(app, f);
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
