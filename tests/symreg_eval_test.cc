// The batched float evaluator against the double scalar reference, for every operator and across batch
// boundaries; the reverse-mode Jacobian against central finite differences; the lookup tables.
#include <doctest/doctest.h>

#include <cmath>

#include "symreg/eval.h"
#include "symreg/lut.h"
#include "symreg/rng.h"
#include "symreg/scalar.h"
#include "tests/test_files.h"

using namespace kiln::symreg;

namespace {

Columns random_columns(int rows, int features, double lo, double hi, uint64_t seed) {
  Columns x(rows, features);
  Rng rng(seed);
  for (int f = 0; f < features; ++f)
    for (int r = 0; r < rows; ++r) x.col(f)[r] = static_cast<float>(rng.uniform(lo, hi));
  return x;
}

std::vector<double> row(const Columns& x, int r) {
  std::vector<double> v;
  for (int f = 0; f < x.features(); ++f) v.push_back(x.col(f)[r]);
  return v;
}

}  // namespace

TEST_CASE("every operator: batched float evaluation matches the double reference on 300 and 20 rows") {
  // Inputs in [0.5, 1.5] keep every operator in its domain; 300 rows = 2 full batches and a ragged tail,
  // 20 rows run the narrow kernels. One evaluator for both: switching widths must not leak.
  Evaluator ev;
  for (int rows : {300, 20, 300})
    for (const OpInfo& info : kOpTable) {
      Columns x = random_columns(rows, 2, 0.5, 1.5, 11);
      if (info.arity == 0) continue;
      std::string name = info.name;
      std::string text =
          info.arity == 2 ? "(" + std::string("x0 ") + (name.size() == 1 ? name + " x1)" : "") : "";
      if (info.arity == 2 && name.size() > 1) text = name + "(x0, x1)";
      if (info.arity == 1) text = name + "(x0 - x1 * 0.5)";
      Tree t = parse_expr(text, {});
      AlignedFloats out(static_cast<size_t>(x.padded()));
      ev.predict(t, x, out.data());
      int bad = 0;
      for (int r = 0; r < x.rows(); ++r) {
        double ref = eval_scalar(t, row(x, r));
        double tol = is_lut(info.op) ? 1e-6 : 3e-6 * std::max(1.0, std::fabs(ref));
        // A table op may read the neighbouring entry when float and double round x0 - x1 * 0.5 differently.
        if (is_lut(info.op) && std::fabs(out[r] - ref) > tol) {
          float in = x.col(0)[r] - x.col(1)[r] * 0.5f;
          ref = lut_table(info.op).lookup(in);
        }
        bad += !(std::fabs(out[r] - ref) <= tol);
      }
      INFO("operator ", name, " expression ", text, " rows ", rows);
      CHECK(bad == 0);
    }
}

TEST_CASE("the Jacobian with respect to the constants matches central differences") {
  for (int rows : {200, 25}) {
    Columns x = random_columns(rows, 2, 0.3, 1.2, 5);
    const char* exprs[] = {"1.3 * x0 + 0.7",
                           "x0 / (x1 + 0.4) - 2.1 * x1",
                           "sin(0.8 * x0) * cos(x1 * 1.1)",
                           "exp(0.5 * x0) + log(x1 * 2.2)",
                           "sqrt(x0 * 1.7) * tanh(x1 - 0.3)",
                           "tan(x0 * 0.6)",
                           "gauss(x0 - 0.9) + aq(x0, 0.4 * x1)",
                           "pow(x0 * 1.2, 1.8)",
                           "inv(x0 + 0.5) * square(x1 + 0.2)",
                           "cube(x0 - 0.25) + abs(x1 - 2.5) - neg(0.3 * x0)",
                           "lut_sin(x0 * 1.4) + lut_exp(0.5 * x1)"};
    for (const char* s : exprs) {
      INFO("expression ", s);
      Tree t = parse_expr(s, {});
      int p = num_constants(t);
      Evaluator ev;
      AlignedFloats out(static_cast<size_t>(x.padded())), jac(static_cast<size_t>(p) * x.padded());
      ev.jacobian(t, x, out.data(), jac.data());
      bool lut = std::string(s).find("lut_") != std::string::npos;
      int k = 0;
      for (int i = 0; i < static_cast<int>(t.size()); ++i) {
        if (t[i].op != Op::kConst) continue;
        double worst = 0;
        for (int r = 0; r < x.rows(); r += 7) {
          // Finite differences of the exact function in double (table ops: of the function they sample,
          // which is what the straight-through derivative promises).
          Tree lo = t, hi = t;
          double h = 1e-4 * std::max(1.0, std::fabs(static_cast<double>(t[i].value)));
          for (Node& n : lo) n.op = lut ? lut_base(n.op) : n.op;
          for (Node& n : hi) n.op = lut ? lut_base(n.op) : n.op;
          // Perturb in double: evaluate with the constant shifted by +-h via a scaled copy.
          std::vector<double> xr = row(x, r);
          lo[i].value = static_cast<float>(t[i].value - h), hi[i].value = static_cast<float>(t[i].value + h);
          double hh = static_cast<double>(hi[i].value) - lo[i].value;
          double fd = (eval_scalar(hi, xr) - eval_scalar(lo, xr)) / hh;
          double an = jac[static_cast<size_t>(k) * x.padded() + r];
          worst = std::max(worst, std::fabs(an - fd) / std::max(1.0, std::fabs(fd)));
        }
        CHECK(worst < 2e-3);
        ++k;
      }
      CHECK(k == p);
    }
  }
}

TEST_CASE("lookup tables: entries, index = trunc((x - lo) N / (hi - lo)) clamped, no interpolation") {
  Lut t = build_lut(Op::kLutSin, LutSpec{1024, -4, 4});
  CHECK(t.scale == 128.0f);
  CHECK(t.table[0] == static_cast<float>(std::sin(-4.0)));
  CHECK(t.table[512] == 0.0f);
  CHECK(t.table[513] == static_cast<float>(std::sin(1.0 / 128)));
  CHECK(t.index(0.0f) == 512);
  CHECK(t.index(1.0f / 128 - 1e-6f) == 512);  // [x_j, x_j+1) reads entry j
  CHECK(t.index(1.0f / 128) == 513);
  CHECK(t.index(-4.0f) == 0);
  CHECK(t.index(-100.0f) == 0);
  CHECK(t.index(3.999f) == 1023);
  CHECK(t.index(1e30f) == 1023);
  CHECK(t.index(std::nanf("")) == 0);
  // log's first entry would be log(0): it is sampled at the bin centre instead.
  Lut l = build_lut(Op::kLutLog, default_lut_spec(Op::kLutLog));
  CHECK(std::isfinite(l.table[0]));
  CHECK(l.table[0] == static_cast<float>(std::log(0.5 * 8.0 / 1024)));
  CHECK(l.table[1] == static_cast<float>(std::log(8.0 / 1024)));
  CHECK_INPUT_ERROR(set_lut_size(1), "--lut-size", "1");
}

TEST_CASE("non-finite outputs stay visible (the loss turns them into +inf)") {
  Columns x = random_columns(10, 1, -1, 1, 2);
  x.col(0)[3] = 0;
  Evaluator ev;
  AlignedFloats out(static_cast<size_t>(x.padded()));
  ev.predict(parse_expr("1 / x0", {}), x, out.data());
  CHECK(std::isinf(out[3]));
  ev.predict(parse_expr("log(x0)", {}), x, out.data());
  CHECK(std::isinf(out[3]));
  CHECK(std::isfinite(out[2]));  // log(|x|) of a negative x is fine
}
