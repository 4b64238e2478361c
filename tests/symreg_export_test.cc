// The exported C99 function, compiled with the host C compiler at test time, reproduces the engine's
// predictions: bit for bit for arithmetic and table ops (no libm linked), to float rounding with libm.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "symreg/codegen.h"
#include "symreg/eval.h"
#include "symreg/rng.h"
#include "tests/test_files.h"

using namespace kiln::symreg;
using kiln::testing::TempDir;

namespace {

// Compiles code + a harness that reads rows of `features` floats (hex) from in.txt and prints f(x) (hex),
// runs it and returns its outputs. Empty when the compiler or the program fails.
std::vector<float> run_c(const TempDir& dir, const std::string& code, int features, const Columns& x,
                         const std::string& libs) {
  dir.write("model.c", code);
  std::ostringstream h;
  h << "#include <stdio.h>\nfloat kiln_expr(const float x[" << features << "]);\n"
    << "int main(void) {\n  float x[" << features << "];\n"
    << "  for (;;) {\n    for (int i = 0; i < " << features
    << "; ++i) if (scanf(\"%a\", &x[i]) != 1) return 0;\n"
    << "    printf(\"%a\\n\", (double)kiln_expr(x));\n  }\n}\n";
  dir.write("main.c", h.str());
  std::ostringstream in;
  char buf[64];
  for (int64_t r = 0; r < x.rows(); ++r)
    for (int f = 0; f < features; ++f)
      std::snprintf(buf, sizeof buf, "%a\n", static_cast<double>(x.col(f)[r])), in << buf;
  dir.write("in.txt", in.str());
  std::string cmd = "cd '" + dir.dir.string() +
                    "' && cc -std=c99 -O2 -Wall -Werror -o model model.c main.c " + libs +
                    " 2> cc.txt && ./model < in.txt > out.txt";
  int rc = std::system(cmd.c_str());
  INFO("compiler output: ", kiln::testing::file_bytes(dir.path("cc.txt")));
  INFO("code:\n", code);
  REQUIRE(rc == 0);
  std::vector<float> out;
  std::ifstream f(dir.path("out.txt"));
  std::string line;
  while (std::getline(f, line)) out.push_back(static_cast<float>(std::strtod(line.c_str(), nullptr)));
  return out;
}

Columns random_columns(int rows, int features, uint64_t seed) {
  Columns x(rows, features);
  Rng rng(seed);
  for (int f = 0; f < features; ++f)
    for (int r = 0; r < rows; ++r) x.col(f)[r] = static_cast<float>(rng.uniform(-3, 3));
  return x;
}

}  // namespace

TEST_CASE("exported C with arithmetic and table ops: no libm, bit-exact against the engine") {
  TempDir dir;
  Columns x = random_columns(500, 3, 1);
  // Inputs reach every table's clamps (x up to 3, * 2.5 beyond the [-4, 4) range).
  Tree t = parse_expr(
      "lut_sin(x0 * 2.5) * -1.25 + lut_exp(x1) / (x2 * x2 + 0.3) - lut_tanh(x0 - x1) + "
      "lut_log(x2) * lut_gauss(x1) + square(x0) - cube(x2 * 0.5) + inv(x1 + 7)",
      {});
  ExportInfo info;
  info.features = 3, info.feature_names = {"a", "b", "c"};
  std::string code = export_c(t, info);
  CHECK(code.find("#include <math.h>") == std::string::npos);
  std::vector<float> c_out = run_c(dir, code, 3, x, "");
  Evaluator ev;
  AlignedFloats e(static_cast<size_t>(x.padded()));
  ev.predict(t, x, e.data());
  REQUIRE(c_out.size() == static_cast<size_t>(x.rows()));
  int mismatches = 0;
  for (int64_t r = 0; r < x.rows(); ++r)
    mismatches += !(c_out[static_cast<size_t>(r)] == e[static_cast<size_t>(r)]);
  CHECK(mismatches == 0);
}

TEST_CASE("exported C with libm functions agrees to float rounding") {
  TempDir dir;
  Columns x = random_columns(300, 2, 2);
  Tree t = parse_expr(
      "sin(x0) * exp(x1 * 0.3) + log(x0 * x1 + 2) - sqrt(x1) + tanh(x0) + aq(x0, x1) + gauss(x1) + "
      "pow(abs(x0) + 1, 1.5) + cos(x1) - neg(x0)",
      {});
  ExportInfo info;
  info.features = 2;
  std::string code = export_c(t, info);
  CHECK(code.find("#include <math.h>") != std::string::npos);
  std::vector<float> c_out = run_c(dir, code, 2, x, "-lm");
  Evaluator ev;
  AlignedFloats e(static_cast<size_t>(x.padded()));
  ev.predict(t, x, e.data());
  REQUIRE(c_out.size() == static_cast<size_t>(x.rows()));
  for (int64_t r = 0; r < x.rows(); ++r)
    CHECK(c_out[static_cast<size_t>(r)] == doctest::Approx(e[static_cast<size_t>(r)]).epsilon(1e-5));
}

TEST_CASE("HLS export: fixed-point types, casts after every operation, tables of kiln_table_t") {
  Tree t = parse_expr("lut_sin(x0) * 0.5 + x1 * x1", {});
  ExportInfo info;
  info.features = 2, info.function = "tagger";
  std::string code = export_hls(t, info);
  CHECK(code.find("typedef ap_fixed<16, 6> kiln_t;") != std::string::npos);
  CHECK(code.find("static const kiln_table_t kiln_lut_sin_table[1024]") != std::string::npos);
  CHECK(code.find("void tagger(const kiln_t x[2], kiln_t y[1])") != std::string::npos);
  CHECK(code.find("y[0] = kiln_t(kiln_t(kiln_lut_sin(x[0]) * kiln_t(0.5f)) + kiln_t(x[1] * x[1]));") !=
        std::string::npos);
  CHECK(c_identifier("class h") == "class_h");
  CHECK(c_identifier("9lives") == "_9lives");
}
