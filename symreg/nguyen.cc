#include "symreg/nguyen.h"

#include "engine/check.h"
#include "symreg/eval.h"
#include "symreg/rng.h"
#include "symreg/scalar.h"

namespace kiln::symreg {

const NguyenProblem& nguyen(int id) {
  static const std::vector<NguyenProblem> suite = {
      {1, "x^3+x^2+x", "x0*x0*x0 + x0*x0 + x0", 1, -1, 1},
      {2, "x^4+x^3+x^2+x", "x0*x0*x0*x0 + x0*x0*x0 + x0*x0 + x0", 1, -1, 1},
      {3, "x^5+x^4+x^3+x^2+x", "x0*x0*x0*x0*x0 + x0*x0*x0*x0 + x0*x0*x0 + x0*x0 + x0", 1, -1, 1},
      {4, "x^6+x^5+x^4+x^3+x^2+x", "x0*x0*x0*x0*x0*x0 + x0*x0*x0*x0*x0 + x0*x0*x0*x0 + x0*x0*x0 + x0*x0 + x0",
       1, -1, 1},
      {5, "sin(x^2)cos(x)-1", "sin(x0*x0)*cos(x0) - 1", 1, -1, 1},
      {6, "sin(x)+sin(x+x^2)", "sin(x0) + sin(x0 + x0*x0)", 1, -1, 1},
      {7, "ln(x+1)+ln(x^2+1)", "log(x0 + 1) + log(x0*x0 + 1)", 1, 0, 2},
      {8, "sqrt(x)", "exp(log(x0) * 0.5)", 1, 0, 4},
      {9, "sin(x)+sin(y^2)", "sin(x0) + sin(x1*x1)", 2, 0, 1},
      {10, "2sin(x)cos(y)", "2*sin(x0)*cos(x1)", 2, 0, 1},
      {11, "x^y", "exp(x1 * log(x0))", 2, 0, 1},
      {12, "x^4-x^3+y^2/2-y", "x0*x0*x0*x0 - x0*x0*x0 + x1*x1/2 - x1", 2, 0, 1},
  };
  KILN_CHECK(id >= 1 && id <= 12, "Nguyen problems are 1..12, got " + std::to_string(id));
  return suite[static_cast<size_t>(id - 1)];
}

const char* nguyen_ops() { return "+,-,*,/,sin,cos,exp,log"; }

NguyenData make_nguyen_data(const NguyenProblem& p, int rows, uint64_t seed) {
  NguyenData d{Columns(rows, p.variables), {}};
  Rng rng = Rng::derive(seed, {static_cast<uint64_t>(p.id), 0x6e67ull});
  Tree ref = parse_expr(p.reference, {});
  std::vector<double> row(static_cast<size_t>(p.variables));
  for (int r = 0; r < rows; ++r) {
    for (int v = 0; v < p.variables; ++v) row[v] = static_cast<float>(rng.uniform(p.lo, p.hi));
    for (int v = 0; v < p.variables; ++v) d.x.col(v)[r] = static_cast<float>(row[v]);
    d.y.push_back(static_cast<float>(eval_scalar(ref, row)));
  }
  return d;
}

double r_squared(const Tree& t, const Columns& x, const std::vector<float>& y) {
  Evaluator ev;
  AlignedFloats out(static_cast<size_t>(x.padded()));
  ev.predict(t, x, out.data());
  double mean = 0, sse = 0, sst = 0;
  for (float v : y) mean += v;
  mean /= static_cast<double>(y.size());
  for (size_t r = 0; r < y.size(); ++r) {
    double e = out[r] - static_cast<double>(y[r]), m = y[r] - mean;
    if (!std::isfinite(e)) return -std::numeric_limits<double>::infinity();
    sse += e * e, sst += m * m;
  }
  return sst > 0 ? 1 - sse / sst : (sse == 0 ? 1 : -std::numeric_limits<double>::infinity());
}

int recovered_index(const NguyenProblem& p, const std::vector<Candidate>& front, const OpSet& ops) {
  int budget = complexity(parse_expr(p.reference, {}), ops);
  NguyenData fresh = make_nguyen_data(p, 1000, 0xf7e54ull);
  for (size_t i = 0; i < front.size(); ++i)
    if (front[i].complexity <= budget && r_squared(front[i].tree, fresh.x, fresh.y) >= 0.99999)
      return static_cast<int>(i);
  return -1;
}

bool has_log_of_exp(const Tree& t) {
  // In postfix order a unary node's operand ends right before it.
  for (size_t i = 1; i < t.size(); ++i)
    if (t[i].op == Op::kLog && t[i - 1].op == Op::kExp) return true;
  return false;
}

}  // namespace kiln::symreg
