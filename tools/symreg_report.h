// What `kiln symreg` writes about its fronts: the printed table, front.json, front.csv and front.svg.
// One Output per searched target: the regression target, or one class against the rest.
#pragma once
#include <string>
#include <vector>

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

}  // namespace kiln::symreg
