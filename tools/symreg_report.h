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
  std::vector<Candidate> front;
  std::vector<double> train_metric, test_metric;  // per front entry: R^2 (regression) or AUC
  size_t selected = 0;
  int generations = 0;
  double seconds = 0;
  std::string stop_reason;
};

// The table printed at the end: complexity, loss, R^2 or AUC (test), expression; the selected row marked.
std::string front_table(const Output& o, const std::vector<std::string>& names);
std::string front_json(const std::vector<Output>& outs, const std::vector<std::string>& names);
std::string front_csv(const std::vector<Output>& outs, const std::vector<std::string>& names);
// Loss against complexity, one series per output (log loss axis when the losses span decades).
void write_front_svg(const std::string& path, const std::vector<Output>& outs);

}  // namespace kiln::symreg
