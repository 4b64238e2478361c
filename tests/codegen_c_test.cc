// Generated C (and the lowered program it is built from) against the deployed fixed-point model, on every
// sample of a test split: 0 mismatches, with the C compiled by the host compiler under
// -std=c99 -Wall -Wextra -Werror -pedantic.
#include "tests/codegen_harness.h"

using namespace kiln;
using namespace kiln::testing;

namespace {

// Compiles the generated C with a sample main on the host and returns its output codes.
std::vector<int64_t> host_c(const Trained& t, const codegen::CFiles& f, const TempDir& dir, int64_t n) {
  write_file(dir.path(t.name + ".h"), f.header);
  write_file(dir.path(t.name + ".c"), f.source);
  write_file(dir.path("main.c"), samples_main(t.name, t.test_raw, n));
  sh("cc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -o " + dir.path("host") + " " + dir.path(t.name + ".c") + " " +
         dir.path("main.c"),
     dir);
  return parse_codes(sh(dir.path("host"), dir));
}

void check_model(const Trained& t) {
  const int64_t n = t.test_std.dim(0);
  std::vector<int64_t> want = deployed_codes(t, t.test_std);
  // The lowering: integer evaluation of the program == the deployed model.
  int64_t bad = 0;
  const int64_t d = t.test_std.size() / n, outs = t.program.out().size;
  for (int64_t r = 0; r < n; ++r) {
    std::vector<int64_t> y = codegen::run(t.program, codegen::quantize_input(t.program, t.test_std.data() + r * d));
    for (int64_t j = 0; j < outs; ++j) {
      if (bad == 0 && y[static_cast<size_t>(j)] != want[static_cast<size_t>(r * outs + j)])
        MESSAGE("first mismatch: sample " << r << " output " << j << ": program " << y[static_cast<size_t>(j)] << ", deployed "
                                          << want[static_cast<size_t>(r * outs + j)]);
      bad += y[static_cast<size_t>(j)] != want[static_cast<size_t>(r * outs + j)];
    }
  }
  CHECK(bad == 0);
  // The generated C, from raw (unstandardised) features.
  TempDir dir;
  codegen::CFiles f = codegen::emit_c(t.program);
  std::vector<int64_t> got = host_c(t, f, dir, n);
  REQUIRE(got.size() == want.size());
  int64_t c_bad = 0;
  for (size_t j = 0; j < got.size(); ++j) c_bad += got[j] != want[j];
  MESSAGE(t.name << ": " << n << " test samples, " << c_bad << " mismatches; flash tables " << f.const_bytes
                 << " B, RAM " << f.ram_bytes << " B");
  CHECK(c_bad == 0);
}

}  // namespace

TEST_CASE("dense MLP (HGQ, digits): generated C == deployed model on the whole test split") {
  Trained t = dense_model();
  check_model(t);
}

TEST_CASE("Conv1D model (HGQ): generated C == deployed model on the whole test split") {
  Trained t = conv1d_model();
  check_model(t);
}

TEST_CASE("Conv2D + BatchNorm + DepthwiseConv2D + pooling CNN (HGQ, digits): generated C == deployed model") {
  Trained t = cnn_model();
  check_model(t);
}
