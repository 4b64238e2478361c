// The exported C99 function, compiled with the host C compiler at test time, reproduces the engine's
// predictions: bit for bit for arithmetic and table ops (no libm linked), to float rounding with libm.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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

TEST_CASE("check_function_name: a C identifier used as given, else an InputError naming it") {
  for (const char* ok : {"kiln_symreg", "tagger", "f9", "a_b", "kiln_symreg_0", "Model", "sin_model", "x"})
    CHECK_NOTHROW(check_function_name(ok, "--function"));
  CHECK_INPUT_ERROR(check_function_name("int", "--function"), "--function: 'int'", "keyword");
  CHECK_INPUT_ERROR(check_function_name("class", "--function"), "'class'", "keyword");  // C++ only
  CHECK_INPUT_ERROR(check_function_name("bad name", "--function"), "--function: 'bad name'", "C identifier",
                    "character 4");
  CHECK_INPUT_ERROR(check_function_name("", "--function"), "--function: ''", "empty");
  CHECK_INPUT_ERROR(check_function_name("9lives", "--function"), "'9lives'", "digit");
  CHECK_INPUT_ERROR(check_function_name("caf\xc3\xa9", "--function"), "'caf\\xc3\\xa9'", "ASCII");
  CHECK_INPUT_ERROR(check_function_name("a\nb", "--function"), "'a\\x0ab'");  // still one line
  for (const char* reserved : {"__x", "_X", "_x", "a__b"})
    CHECK_INPUT_ERROR(check_function_name(reserved, "--function"), "'" + std::string(reserved) + "'",
                      "reserved");
  for (const char* taken : {"sinf", "isnan", "NAN", "fabs", "ap_fixed", "hls", "AP_SAT", "kiln_t",
                            "kiln_lut_sin", "kiln_lut_sin_table", "kiln_square", "main"})
    CHECK_INPUT_ERROR(check_function_name(taken, "--function"), "'" + std::string(taken) + "'");
  CHECK_INPUT_ERROR(check_function_name(std::string(256, 'a'), "--function"), "256 characters");
  CHECK_NOTHROW(check_function_name(std::string(255, 'a'), "--function"));
}

TEST_CASE("export_c and export_hls refuse a bad function name themselves and never rename it") {
  Tree t = parse_expr("x0 * x1 + 0.5", {});
  ExportInfo info;
  info.features = 2;
  for (const char* bad : {"int", "bad name", "__x", "9lives", ""}) {
    info.function = bad;
    CHECK_INPUT_ERROR(export_c(t, info), "'" + std::string(bad) + "'");
    CHECK_INPUT_ERROR(export_hls(t, info), "'" + std::string(bad) + "'");
  }
  info.function = "tagger";
  CHECK(export_c(t, info).find("float tagger(const float x[2])") != std::string::npos);
}

TEST_CASE("hls_fixed_type: ap_fixed / ap_ufixed with hls4ml's modes, normalised; anything else refused") {
  CHECK(hls_fixed_type("ap_fixed<16, 6>") == "ap_fixed<16, 6>");
  CHECK(hls_fixed_type("ap_fixed<16,6>") == "ap_fixed<16, 6>");
  CHECK(hls_fixed_type("  ap_ufixed < 12 ,4 >  ") == "ap_ufixed<12, 4>");
  CHECK(hls_fixed_type("ap_fixed<18,8,AP_RND_CONV,AP_SAT>") == "ap_fixed<18, 8, AP_RND_CONV, AP_SAT>");
  CHECK(hls_fixed_type("ap_fixed<8, -2, AP_RND>") == "ap_fixed<8, -2, AP_RND>");
  CHECK(hls_fixed_type("ap_fixed<16,6,AP_TRN,AP_WRAP,0>") == "ap_fixed<16, 6, AP_TRN, AP_WRAP, 0>");
  CHECK(hls_fixed_type("ap_fixed<1, 1>") == "ap_fixed<1, 1>");
  CHECK(hls_fixed_type("ap_fixed<64, 64>") == "ap_fixed<64, 64>");
  const std::string shape = "is not a fixed-point type";
  for (const char* bad :
       {"garbage<", "", "float", "ap_fixed", "ap_fixed<16>", "ap_fixed<16, 6", "ap_fixed<16 6>",
        "ap_fixed<16, 6>>", "ap_fixed<16, 6,>", "ap_int<16>", "ap_fixed<16, 6> x", "ap_fixed<16, 6>; int",
        "ap_fixed<16, 6, AP_RND, AP_SAT, 0, 1>"})
    CHECK_INPUT_ERROR(hls_fixed_type(bad, "--hls-type"), "--hls-type: '" + std::string(bad) + "'", shape);
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<0, 6>", "--hls-type"), "'ap_fixed<0, 6>'", "W = 0", "[1, 64]");
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<65, 6>", "--hls-type"), "W = 65", "[1, 64]");
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<16, 65>", "--hls-type"), "I = 65", "[-64, 64]");
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<016, 6>", "--hls-type"), "'016'", "decimal");  // octal in C++
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<16.5, 6>", "--hls-type"), "'ap_fixed<16.5, 6>'");
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<99999999999, 6>", "--hls-type"), "W = 99999999999", "[1, 64]");
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<16, 6, AP_SAT>", "--hls-type"), "'AP_SAT'", "quantization mode");
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<16, 6, AP_RND, AP_RND>", "--hls-type"), "overflow mode");
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<16, 6, AP_RND, AP_WRAP_SM>", "--hls-type"), "AP_WRAP_SM");
  CHECK_INPUT_ERROR(hls_fixed_type("ap_fixed<16, 6, AP_RND, AP_SAT, 2>", "--hls-type"), "N = '2'");
}

TEST_CASE("export_hls checks its types itself and writes them normalised; they compile with the host model") {
  Tree t = parse_expr("x0 * x1 + square(x0) - 0.5", {});
  ExportInfo info;
  info.features = 2, info.function = "tagger";
  info.hls_type = "garbage<";
  CHECK_INPUT_ERROR(export_hls(t, info), "'garbage<'", "fixed-point type");
  info.hls_type = "ap_fixed<16, 6>", info.hls_table_type = "ap_fixed<18, 8";
  CHECK_INPUT_ERROR(export_hls(t, info), "'ap_fixed<18, 8'");
  info.hls_table_type = "ap_fixed<18,8>";
  TempDir dir;
  for (const char* type : {" ap_fixed< 16 ,6,AP_RND , AP_SAT > ", "ap_ufixed<12,4,AP_TRN_ZERO,AP_WRAP,0>"}) {
    info.hls_type = type;
    const std::string code = export_hls(t, info), want = "typedef " + hls_fixed_type(type) + " kiln_t;";
    CHECK(code.find(want) != std::string::npos);
    CHECK(code.find("typedef ap_fixed<18, 8> kiln_table_t;") != std::string::npos);
    // The normalised spelling is valid C++ for kiln's ap_fixed model (no hls_math.h: arithmetic only).
    dir.write("model_hls.cpp", code);
    const std::string hls_host = std::filesystem::absolute("codegen/hls_host").string();
    const std::string cmd =
        "g++ -std=c++14 -fsyntax-only -Wall -Wextra -Werror -Wno-unknown-pragmas -isystem " + hls_host + " " +
        dir.path("model_hls.cpp") + " 2> " + dir.path("cxx.txt");
    INFO("compiler output: ", kiln::testing::file_bytes(dir.path("cxx.txt")));
    INFO("code:\n", code);
    CHECK(std::system(cmd.c_str()) == 0);
  }
}
