// The C generator's packed dense layers and 32-bit quantizers on hand-built integer programs: the weight type
// of each layer is the narrowest that holds its codes (int8_t, int16_t, int32_t), inputs and outputs whose
// weights are all zero are dropped, the SMLAD path is taken only where inputs and weights fit 16 bits and the
// accumulator 32 (a wider input, wider weights or a wider accumulator fall back to portable loops), and every
// variant gives compress::run's codes bit for bit: on the host, and on the emulated Cortex-M4 (QEMU
// mps2-an386) both with SMLAD and with -DNAME_NO_DSP.
#include <random>

#include "codegen/emit_c_dense.h"
#include "codegen/emit_c_quantize.h"
#include "tests/codegen_harness.h"

using namespace kiln;
using namespace kiln::testing;

namespace {

using compress::FixedType;
using compress::Overflow;
using compress::Round;

// Dense layer codes: [n_in][n_out] uniform in [-a, a], with input `zero_in` and output `zero_out` all zero
// (pruned; -1: none) and about 1 weight in 8 zero inside.
compress::MacParams dense(int64_t n_in, int64_t n_out, int64_t a, int64_t zero_in, int64_t zero_out,
                          std::mt19937& rng) {
  compress::MacParams m;
  m.in_shape = {n_in}, m.out_shape = {n_out}, m.dense = true;
  std::uniform_int_distribution<int64_t> u(-a, a);
  std::uniform_int_distribution<int> sparse(0, 7);
  for (int64_t j = 0; j < n_in; ++j)
    for (int64_t n = 0; n < n_out; ++n) {
      int64_t w = j == zero_in || n == zero_out || sparse(rng) == 0 ? 0 : u(rng);
      if (j == (zero_in == 0 ? 1 : 0) && n != zero_out) w = n % 2 ? a : -a;  // the extremes occur
      m.w_code.push_back(w), m.w_frac.push_back(0);
      m.w_types.push_back({1, 30, 0, Round::kRnd, Overflow::kWrap});
    }
  for (int64_t n = 0; n < n_out; ++n) m.b_code.push_back(u(rng) / 4), m.b_frac.push_back(0);
  return m;
}

std::vector<FixedType> uniform(int64_t n, FixedType t) {
  return std::vector<FixedType>(static_cast<size_t>(n), t);
}

struct Case {
  codegen::Program program;
  std::vector<std::vector<int64_t>> inputs;  // input codes per sample
};

// Input codes spanning the input buffer's whole range: its extremes, then uniform draws.
std::vector<std::vector<int64_t>> inputs_for(const codegen::Program& p, int64_t n, std::mt19937& rng) {
  const codegen::Buffer& in = p.input();
  std::vector<std::vector<int64_t>> rows;
  for (int64_t r = 0; r < n; ++r) {
    std::vector<int64_t> x;
    for (int64_t e = 0; e < in.size; ++e) {
      const int64_t lo = in.lo[static_cast<size_t>(e)], hi = in.hi[static_cast<size_t>(e)];
      x.push_back(r == 0 ? lo : r == 1 ? hi : std::uniform_int_distribution<int64_t>(lo, hi)(rng));
    }
    rows.push_back(x);
  }
  return rows;
}

// A main() running NAME_run on the given input codes and printing the output codes (host and Cortex-M4).
std::string codes_main(const std::string& name, const std::vector<std::vector<int64_t>>& inputs) {
  std::ostringstream m;
  m << "#include <stdio.h>\n#include \"" << name << ".h\"\nstatic const long kX[" << inputs.size() << "]["
    << inputs[0].size() << "] = {\n";
  for (const auto& row : inputs) {
    m << "  {";
    for (size_t j = 0; j < row.size(); ++j) m << (j ? ", " : "") << row[j] << 'L';
    m << "},\n";
  }
  m << "};\n/* newlib-nano's printf has no %lld: decimal by hand. */\nstatic void put(long long v) {\n"
    << "  char b[24];\n  int n = 0;\n  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : "
       "(unsigned long long)v;\n"
    << "  do b[n++] = (char)('0' + u % 10); while ((u /= 10) != 0);\n  if (v < 0) putchar('-');\n"
    << "  while (n) putchar(b[--n]);\n  putchar(' ');\n}\n";
  m << "int main(void) {\n  static " << name << "_in_t q[" << name << "_N_IN];\n  static " << name
    << "_out_t y[" << name << "_N_OUT];\n  unsigned r, j;\n  for (r = 0; r < " << inputs.size()
    << "; ++r) {\n"
    << "    for (j = 0; j < " << name << "_N_IN; ++j) q[j] = (" << name << "_in_t)kX[r][j];\n    " << name
    << "_run(q, y);\n    for (j = 0; j < " << name << "_N_OUT; ++j) put((long long)y[j]);\n"
    << "    printf(\"\\n\");\n  }\n  return 0;\n}\n";
  return m.str();
}

std::vector<int64_t> reference(const Case& c) {
  std::vector<int64_t> want;
  for (const auto& x : c.inputs) {
    const std::vector<int64_t> y = compress::run(c.program, x);
    want.insert(want.end(), y.begin(), y.end());
  }
  return want;
}

// The generated C on the host and on the emulated Cortex-M4, with and without the DSP path: all == want.
void check_everywhere(const Case& c, bool expect_dsp) {
  const std::string name = c.program.name;
  const codegen::CFiles f = codegen::emit_c(c.program);
  CHECK((f.source.find("#if KILN_DSP") != std::string::npos) == expect_dsp);
  TempDir dir;
  const std::string src = dir.path(name + ".c");
  write_file(dir.path(name + ".h"), f.header);
  write_file(src, f.source);
  write_file(dir.path("main.c"), codes_main(name, c.inputs));
  const std::vector<int64_t> want = reference(c);
  sh("cc -std=c99 -Wall -Wextra -Werror -pedantic -O2 -o " + dir.path("host") + " " + src + " " +
         dir.path("main.c"),
     dir);
  CHECK(parse_codes(sh(dir.path("host"), dir)) == want);
  const std::string mcu = std::filesystem::absolute("codegen/mcu").string();
  const std::string arm =
      "arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2 -std=c99 ";
  for (const std::string& flags : {std::string(), "-D" + name + "_NO_DSP"}) {
    sh(arm + "-Wall -Wextra -Werror -pedantic " + flags + " -c " + src + " -o " + dir.path("m.o"), dir);
    // The SMLAD instructions are in the object exactly when the DSP path is compiled.
    const std::string dis = sh("arm-none-eabi-objdump -d " + dir.path("m.o"), dir);
    CHECK((dis.find("smlad") != std::string::npos) == (expect_dsp && flags.empty()));
    sh(arm + flags +
           " -ffunction-sections -fdata-sections --specs=nano.specs --specs=rdimon.specs -nostartfiles -T " +
           mcu + "/mps2.ld -Wl,--gc-sections -I" + dir.dir.string() + " " + mcu + "/startup.c " + src + " " +
           dir.path("main.c") + " -o " + dir.path("t.elf"),
       dir);
    // stdin from /dev/null and -k: as tests/codegen_mcu_test.cc (a background QEMU must not read the
    // terminal).
    const std::vector<int64_t> m4 =
        parse_codes(sh("timeout -k 5 100 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none "
                       "-semihosting-config enable=on,target=native -kernel " +
                           dir.path("t.elf") + " < /dev/null",
                       dir));
    INFO("Cortex-M4 build flags: '" << flags << "'");
    CHECK(m4 == want);
  }
}

// Three dense layers whose weights need 8, 16 and 32 bits, each with a pruned input and output, with a ReLU
// and per-element quantizers (round half up + SAT with a pruned element; truncation + WRAP) between them.
Case three_widths() {
  std::mt19937 rng(3);
  compress::ProgramBuilder b;
  b.input({16}, uniform(16, {1, 9, 0, Round::kRnd, Overflow::kSat}));  // codes in [-512, 511]
  b.mac("narrow8", dense(16, 12, 127, 3, 5, rng));
  b.relu("narrow8.relu");
  std::vector<FixedType> q;
  for (int e = 0; e < 12; ++e)
    q.push_back({0, 4 + e % 3, e % 4 == 1 ? 0 : -2, Round::kRnd, Overflow::kSat});  // drop 0 or 2 bits
  q[7] = {0, 0, 0, Round::kRnd, Overflow::kSat};  // width 0: pruned, always 0
  b.quantize("narrow16.input_q", q);
  b.mac("narrow16", dense(12, 10, 3000, 0, 9, rng));
  b.quantize("wide32.input_q", uniform(10, {1, 5, -3, Round::kTrn, Overflow::kWrap}));
  b.mac("wide32", dense(10, 6, 100000, 4, 0, rng));
  Case c;
  c.program = b.finish();
  c.program.name = "packed3";
  c.inputs = inputs_for(c.program, 60, rng);
  return c;
}

}  // namespace

TEST_CASE(
    "packed dense layers: the weight type per layer is the narrowest for its codes; pruned rows and columns "
    "dropped") {
  const Case c = three_widths();
  const std::vector<std::string> names = {"narrow8", "narrow16", "wide32"};
  const int bytes[] = {1, 2, 4};
  const int64_t n_in[] = {16, 12, 10}, n_out[] = {12, 10, 6};
  int k = 0;
  for (const codegen::Op& op : c.program.ops) {
    if (op.kind != codegen::Op::kDense) continue;
    INFO("layer " << op.name);
    REQUIRE(op.name == names[static_cast<size_t>(k)]);
    const codegen::DensePlan d = codegen::plan_dense(c.program, op);
    CHECK(d.packed);
    CHECK(d.w_bytes == bytes[k]);
    CHECK(d.smlad == (k < 2));  // int32_t weights: no 16-bit halves
    CHECK(static_cast<int64_t>(d.cols.size()) == n_in[k] - 1);
    CHECK(static_cast<int64_t>(d.rows.size()) == n_out[k] - 1);
    CHECK(d.stride == (k == 0 ? 16 : k == 1 ? 12 : 9));  // a whole number of 32-bit words on the SMLAD path
    CHECK(d.packed_bytes <= d.sparse_bytes);
    ++k;
  }
  CHECK(k == 3);
  const std::string src = codegen::emit_c(c.program).source;
  CHECK(src.find("union { int8_t v[176]; int32_t w[44]; } kiln_w1") != std::string::npos);   // 11 x 16
  CHECK(src.find("union { int16_t v[108]; int32_t w[54]; } kiln_w4") != std::string::npos);  // 9 x 12
  CHECK(src.find("static const int32_t kiln_w6[45]") != std::string::npos);                  // 5 x 9
  CHECK(src.find("kiln_requant") == std::string::npos);  // both quantizers in 32-bit form
}

TEST_CASE("packed dense layers: host == Cortex-M4 with SMLAD == Cortex-M4 portable == compress::run") {
  check_everywhere(three_widths(), true);
}

TEST_CASE("operands that do not fit 16 bits, or a 64-bit accumulator, fall back to portable loops, exact") {
  std::mt19937 rng(5);
  SUBCASE("inputs of 21 bits") {
    compress::ProgramBuilder b;
    b.input({8}, uniform(8, {1, 20, 0, Round::kRnd, Overflow::kSat}));
    b.mac("wide_in", dense(8, 4, 100, -1, -1, rng));  // |sum| <= 8 * 2^20 * 100 < 2^31: int32_t accumulator
    Case c;
    c.program = b.finish();
    c.program.name = "wide_in";
    const codegen::DensePlan d = codegen::plan_dense(c.program, c.program.ops[0]);
    CHECK(d.packed);
    CHECK(!d.wide_acc);
    CHECK(!d.smlad);
    c.inputs = inputs_for(c.program, 20, rng);
    check_everywhere(c, false);
  }
  SUBCASE("an accumulator beyond 32 bits") {
    compress::ProgramBuilder b;
    b.input({8}, uniform(8, {1, 15, 0, Round::kRnd, Overflow::kSat}));  // 16-bit codes
    b.mac("wide_acc", dense(8, 4, 32767, -1, -1, rng));  // 16-bit weights; 8 * 2^15 * ~2^14 > 2^31: int64_t
    Case c;
    c.program = b.finish();
    c.program.name = "wide_acc";
    const codegen::DensePlan d = codegen::plan_dense(c.program, c.program.ops[0]);
    CHECK(d.packed);
    CHECK(d.wide_acc);
    CHECK(!d.smlad);
    CHECK(codegen::emit_c(c.program).source.find("int64_t acc") != std::string::npos);
    c.inputs = inputs_for(c.program, 20, rng);
    check_everywhere(c, false);
  }
}

TEST_CASE("a mostly pruned dense layer keeps the sparse lists (smaller than packed rows), exact") {
  std::mt19937 rng(9);
  compress::MacParams m = dense(32, 16, 100, -1, -1, rng);
  for (size_t j = 0; j < m.w_code.size(); ++j)
    if (j % 5 != 0) m.w_code[j] = 0;  // 80% zeros, spread over every row and column
  compress::ProgramBuilder b;
  b.input({32}, uniform(32, {1, 7, 0, Round::kRnd, Overflow::kSat}));
  b.mac("sparse", m);
  Case c;
  c.program = b.finish();
  c.program.name = "sparse";
  const codegen::DensePlan d = codegen::plan_dense(c.program, c.program.ops[0]);
  CHECK(!d.packed);
  CHECK(d.packed_bytes > d.sparse_bytes);
  CHECK(codegen::emit_c(c.program).source.find("x[r * 32 + kiln_o1[p]]") != std::string::npos);
  c.inputs = inputs_for(c.program, 20, rng);
  check_everywhere(c, false);
}

TEST_CASE("32-bit quantizers: both roundings, every overflow mode, pruned lanes; other roundings fall back") {
  std::mt19937 rng(11);
  compress::ProgramBuilder b;
  b.input({8}, uniform(8, {1, 12, 0, Round::kRnd, Overflow::kSat}));  // codes in [-4096, 4095]
  // Per element: 2 to 4 fractional bits dropped, 3 to 5 kept, lane 5 pruned (width 0).
  auto types = [](int k, Round r, Overflow o) {
    std::vector<FixedType> t;
    for (int e = 0; e < 8; ++e) t.push_back({k, 5 + e % 3, -2 - e % 3, r, o});
    t[5] = {k, -k, 0, r, o};
    return t;
  };
  b.quantize("sat_sym", types(1, Round::kRnd, Overflow::kSatSym));
  b.quantize("sat_zero", types(1, Round::kTrn, Overflow::kSatZero));
  b.quantize("wrap_unsigned", types(0, Round::kRnd, Overflow::kWrap));
  b.quantize("sat_unsigned", types(0, Round::kTrn, Overflow::kSat));
  Case c;
  c.program = b.finish();
  c.program.name = "quant";
  for (const codegen::Op& op : c.program.ops) CHECK(codegen::quantize_fast_fits(c.program, op));
  CHECK(codegen::emit_c(c.program).source.find("kiln_requant") == std::string::npos);
  c.inputs = inputs_for(c.program, 40, rng);
  check_everywhere(c, false);

  compress::ProgramBuilder b2;
  b2.input({8}, uniform(8, {1, 12, 0, Round::kRnd, Overflow::kSat}));
  b2.quantize("conv", types(1, Round::kRndConv, Overflow::kSat));  // round half to even: the generic form
  Case c2;
  c2.program = b2.finish();
  c2.program.name = "quant_conv";
  CHECK(!codegen::quantize_fast_fits(c2.program, c2.program.ops[0]));
  CHECK(codegen::emit_c(c2.program).source.find("kiln_requant(x[e]") != std::string::npos);
  c2.inputs = inputs_for(c2.program, 40, rng);
  check_everywhere(c2, false);
}
