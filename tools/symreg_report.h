// What `kiln symreg` writes about its fronts: the printed table, front.json, front.csv, front.svg,
// predictions.csv and the exported code (model.c, model_hls.cpp). One Output per searched target: the
// regression target, or one class against the rest.
#pragma once
#include <string>
#include <vector>

#include "symreg/columns.h"
#include "symreg/eval.h"
#include "symreg/front.h"

namespace kiln::symreg {

struct Output {
  std::string name;  // target column, or "class h"
  bool classification = false;
  std::string loss;  // loss name
  // --teacher: what the search fitted (e.g. "teacher probability p_h") and the teacher network's AUC
  // against the true labels on the same train and test rows; the expressions' metrics are AUCs too.
  bool teacher = false;
  std::string fitted_to;
  double teacher_train_auc = 0, teacher_test_auc = 0;
  std::vector<Candidate> front;
  std::vector<double> train_metric, test_metric;  // per front entry: R^2 (regression) or AUC
  size_t selected = 0;
  int generations = 0;
  double seconds = 0;
  std::string stop_reason;
  double node_evals = 0;       // over every rank
  int ranks = 1, islands = 0;  // MPI ranks and islands in all
};

// With a teacher: the front entry with the highest train AUC (ties: the simplest), whose test AUC is the one
// compared with the teacher's (chosen without looking at the test rows).
size_t best_by_train_metric(const Output& o);

// The table printed at the end: complexity, loss, R^2 or AUC (test), expression; the selected row marked.
// With a teacher, a last line "teacher AUC A, best expression AUC B (complexity N; ...): +-D pp".
std::string front_table(const Output& o, const std::vector<std::string>& names);
std::string front_json(const std::vector<Output>& outs, const std::vector<std::string>& names);
std::string front_csv(const std::vector<Output>& outs, const std::vector<std::string>& names);
// Loss against complexity, one series per output (log loss axis when the losses span decades).
void write_front_svg(const std::string& path, const std::vector<Output>& outs);

// predictions.csv: the test rows (x_test, the search's features) with the selected expressions' predictions
// (engine, float32, %.9g round-trips), so that exported code can be checked against the engine row by row;
// then, with a teacher, its scores (teacher_scores: per output, its score on each test row; empty without).
std::string predictions_csv(const std::vector<Output>& outs, const std::vector<std::string>& names,
                            const Columns& x_test, const std::vector<const float*>& teacher_scores,
                            Evaluator& ev);

// The exported functions' names, checked before the search: `function` itself for one output, else
// function_CLASS per output "class CLASS", CLASS made an identifier (it comes from the data) without creating
// a reserved "__". InputError when two classes would export the same name (`data`: the file, for the
// message).
std::vector<std::string> export_function_names(const std::string& function,
                                               const std::vector<std::string>& outputs,
                                               const std::string& data);

// The code of one --export format ("c": model.c, "hls": model_hls.cpp): each output's selected expression as
// the function functions[k], with a comment giving its complexity, train loss and test metric.
std::string export_code(const std::string& format, const std::vector<Output>& outs,
                        const std::vector<std::string>& functions, const std::vector<std::string>& names,
                        const std::string& hls_type);

}  // namespace kiln::symreg
