// The Nguyen benchmark suite (symreg.md) and the exact-recovery judgement the tests and bench/ share.
//
// Function set + - * / sin cos exp log. Each problem has a reference expression written with that set
// (sqrt(x) as exp(log(x) * 0.5), x^y as exp(y * log(x))), whose complexity is the budget: a run recovers
// the formula when some expression on its front with complexity <= the reference's reaches
// R^2 >= 0.99999 on 1000 fresh points drawn from the training distribution.
//
//   const NguyenProblem& p = nguyen(7);
//   NguyenData d = make_nguyen_data(p, /*rows=*/20, /*seed=*/1);
//   bool ok = recovered(p, front, ops);
#pragma once
#include <string>
#include <vector>

#include "symreg/columns.h"
#include "symreg/front.h"

namespace kiln::symreg {

struct NguyenProblem {
  int id;
  std::string formula;    // as published
  std::string reference;  // the same function, with the function set (variables x0, x1)
  int variables;
  double lo, hi;  // inputs uniform in [lo, hi)
};

const NguyenProblem& nguyen(int id);  // 1..12
const char* nguyen_ops();             // "+,-,*,/,sin,cos,exp,log"

struct NguyenData {
  Columns x;
  std::vector<float> y;
};
NguyenData make_nguyen_data(const NguyenProblem& p, int rows, uint64_t seed);

// R^2 of expression t on data (1 - SSE / SST, in double).
double r_squared(const Tree& t, const Columns& x, const std::vector<float>& y);

// The first front entry (lowest complexity) that recovers the problem, or -1.
int recovered_index(const NguyenProblem& p, const std::vector<Candidate>& front, const OpSet& ops);
inline bool recovered(const NguyenProblem& p, const std::vector<Candidate>& front, const OpSet& ops) {
  return recovered_index(p, front, ops) >= 0;
}

// Does t apply log directly to exp anywhere (log(exp(u)), which is u)? Issue 15's check on every front.
bool has_log_of_exp(const Tree& t);

}  // namespace kiln::symreg
