#include "codegen/emit_c_dense.h"

#include <algorithm>

namespace kiln::codegen {

namespace {

int64_t round_up(int64_t v, int64_t step) { return (v + step - 1) / step * step; }

}  // namespace

DensePlan plan_dense(const Program& p, const Op& op) {
  DensePlan d;
  if (op.kind != Op::kDense) return d;
  const Buffer& x = p.buffers[static_cast<size_t>(op.in)];
  auto w = [&](int64_t j, int64_t n) { return op.weights[static_cast<size_t>(j * op.n_out + n)]; };
  int64_t nnz = 0, wlo = 0, whi = 0;
  for (int64_t j = 0; j < op.n_in; ++j) {
    bool any = false;
    for (int64_t n = 0; n < op.n_out; ++n)
      if (w(j, n) != 0) any = true, ++nnz, wlo = std::min(wlo, w(j, n)), whi = std::max(whi, w(j, n));
    if (any) d.cols.push_back(j);
  }
  for (int64_t n = 0; n < op.n_out; ++n)
    for (int64_t j = 0; j < op.n_in; ++j)
      if (w(j, n) != 0) {
        d.rows.push_back(n);
        break;
      }
  if (nnz == 0) return d;
  d.w_bytes = int_bytes(wlo, whi);
  d.wide_acc = op.partial_bound >= (int64_t{1} << 31);
  // SMLAD multiplies two signed 16-bit halves of each operand: the inputs' storage range and every weight
  // must fit int16_t, and the sum must be the int32_t accumulator of the portable path (see
  // emit_dense_packed).
  d.smlad = !d.wide_acc && signed_bits(x.min(), x.max()) <= 16 && d.w_bytes <= 2;
  const int64_t K = static_cast<int64_t>(d.cols.size()), R = static_cast<int64_t>(d.rows.size());
  // The SMLAD loop reads a 32-bit word per step: 4 int8_t or 2 int16_t weights.
  d.stride = d.smlad ? round_up(K, 4 / d.w_bytes) : K;
  d.packed_bytes = R * d.stride * d.w_bytes + (K < op.n_in ? K * uint_bytes(op.n_in - 1) : 0) +
                   (R < op.n_out ? R * uint_bytes(op.n_out - 1) : 0);
  // As emit_c's sparse lists: value, input offset and per-output start of every nonzero weight.
  d.sparse_bytes = nnz * (d.w_bytes + uint_bytes(op.n_in - 1)) + (op.n_out + 1) * uint_bytes(nnz);
  // The packed rows multiply the zeros left inside them too; they run several times faster per lane than the
  // sparse lists per nonzero (contiguous, vectorised, no index loads), so they win whenever they are no
  // larger.
  d.packed = d.w_bytes <= 4 && d.packed_bytes <= d.sparse_bytes;
  if (!d.packed) return d;
  d.weights.assign(static_cast<size_t>(R * d.stride), 0);
  for (int64_t k = 0; k < R; ++k)
    for (int64_t c = 0; c < K; ++c)
      d.weights[static_cast<size_t>(k * d.stride + c)] =
          w(d.cols[static_cast<size_t>(c)], d.rows[static_cast<size_t>(k)]);
  return d;
}

std::string dsp_preamble(const std::string& name) {
  return "/* Arm cores with the DSP extension (Cortex-M4, M7, M33, ...): dual 16-bit multiply-accumulates "
         "(SMLAD)\n"
         "   in the dense layers whose inputs and weights fit 16 bits; portable C elsewhere, bit-exact "
         "either way.\n"
         "   -D" +
         name +
         "_NO_DSP forces the portable loops. KILN_PAIR packs two 16-bit codes into one word (low half\n"
         "   first); kiln_hi8 sign-extends bytes 1 and 3 of a word into two halves (SXTB16 with a rotate, "
         "one\n"
         "   instruction; the ACLE has no rotate operand). Converting a uint32_t above INT32_MAX to int32_t "
         "wraps\n"
         "   on every compiler that implements Arm's ACLE. */\n"
         "#if defined(__ARM_FEATURE_DSP) && !defined(__ARM_BIG_ENDIAN) && !defined(" +
         name +
         "_NO_DSP)\n#include <arm_acle.h>\n#define KILN_DSP 1\n"
         "#define KILN_PAIR(a, b) ((int32_t)((uint32_t)(uint16_t)(a) | ((uint32_t)(uint16_t)(b) << 16)))\n"
         "#if defined(__GNUC__)\nstatic __inline__ int32_t kiln_hi8(int32_t w) {\n  int32_t r;\n"
         "  __asm__(\"sxtb16 %0, %1, ror #8\" : \"=r\"(r) : \"r\"(w));\n  return r;\n}\n#else\n"
         "#define kiln_hi8(w) __sxtb16((int32_t)(((uint32_t)(w) >> 8) | ((uint32_t)(w) << 24)))\n#endif\n"
         "#else\n#define KILN_DSP 0\n#endif\n\n";
}

EmittedBytes emit_dense_packed(std::ostream& tables, std::ostream& funcs, const Program& p, const Op& op,
                               const DensePlan& d, const std::string& id) {
  EmittedBytes b;
  const Buffer &x = p.buffers[static_cast<size_t>(op.in)], &y = p.buffers[static_cast<size_t>(op.out)];
  const std::string xt = int_type(x.min(), x.max()), yt = int_type(y.min(), y.max());
  const std::string wt = "int" + std::to_string(8 * d.w_bytes) + "_t";
  const std::string acc = d.wide_acc ? "int64_t" : "int32_t";
  const int64_t K = static_cast<int64_t>(d.cols.size()), R = static_cast<int64_t>(d.rows.size());
  const int64_t S = d.stride, words = S * d.w_bytes / 4;  // 32-bit words per row (SMLAD path)
  const bool gather = K < op.n_in, all_rows = R == op.n_out;
  // The weights: a union whose int32_t view the SMLAD path reads a word at a time (C99 allows reading a union
  // member other than the one initialised; the bytes are the little-endian words the path expects).
  const std::string w = "kiln_w" + id;
  tables << "static const "
         << (d.smlad ? "union { " + wt + " v[" + std::to_string(R * S) + "]; int32_t w[" +
                           std::to_string(R * words) + "]; } " + w + " = {"
                     : wt + " " + w + "[" + std::to_string(R * S) + "] = ");
  tables << '{';
  for (size_t j = 0; j < d.weights.size(); ++j)
    tables << (j % 16 == 0 ? "\n    " : " ") << int_literal(d.weights[j], d.w_bytes)
           << (j + 1 < d.weights.size() ? "," : "");
  tables << (d.smlad ? "}};\n" : "};\n");
  b.const_bytes += R * S * d.w_bytes;
  if (gather)
    b.const_bytes +=
        write_array(tables, "static const", "kiln_c" + id, d.cols, uint_bytes(op.n_in - 1), true);
  if (!all_rows)
    b.const_bytes +=
        write_array(tables, "static const", "kiln_n" + id, d.rows, uint_bytes(op.n_out - 1), true);
  const auto [blo, bhi] = std::minmax_element(op.bias.begin(), op.bias.end());
  b.const_bytes += write_array(tables, "static const", "kiln_b" + id, op.bias,
                               int_bytes(std::min<int64_t>(*blo, 0), std::max<int64_t>(*bhi, 0)));

  const std::string n = all_rows ? "k" : "kiln_n" + id + "[k]";
  const std::string ps = op.prod_shift ? " * ((" + acc + ")1 << " + std::to_string(op.prod_shift) + ")" : "";
  const std::string out = "y[r * " + std::to_string(op.n_out) + " + " + n + "] = (" + yt + ")(kiln_b" + id +
                          "[" + n + "] + acc" + ps + ");\n";
  const std::string in = gather ? "xr[kiln_c" + id + "[j]]" : "xr[j]";
  funcs << "/* " << op.name << ": " << op.weights.size() << " weights as " << R << " packed rows of " << K
        << " " << wt << (S > K ? " (padded to " + std::to_string(S) + ")" : "") << "; " << op.n_in - K
        << " inputs and " << op.n_out - R
        << " outputs with only zero weights dropped (no operation emitted); accumulator " << acc << " on 2^-"
        << y.frac << " */\n"
        << "static void kiln_op" << id << "(const " << xt << " *x, " << yt << " *y) {\n"
        << "  int32_t r, k, j;\n  for (r = 0; r < " << op.rows << "; ++r) {\n"
        << "    const " << xt << " *xr = x + r * " << op.n_in << ";\n";
  if (!all_rows)
    funcs << "    for (k = 0; k < " << op.n_out << "; ++k) y[r * " << op.n_out << " + k] = (" << yt
          << ")kiln_b" << id << "[k]; /* outputs with no weight */\n";
  if (d.smlad) {
    // Exactness of SMLAD: each operand half is a 16-bit signed code (x: the buffer's range fits int16_t; w:
    // the layer's weights do), so each product has magnitude <= 2^30 and is exact in 32 bits. SMLAD adds both
    // products to the accumulator modulo 2^32; every partial sum of this layer, in any order, is bounded by
    // op.partial_bound < 2^31 (compress/program_mac.cc: |bias| + sum |x w| 2^prod_shift), so no sum wraps and
    // the accumulator equals the portable loop's exact int32_t sum. Zero padding adds 0 * 0.
    // The inputs as 16-bit pairs, read straight from x when nothing is gathered or padded.
    const bool copy = gather || S > K;
    const std::string xs = copy ? "xs" : "xr";
    funcs << "#if KILN_DSP\n    {\n";
    if (copy) {
      funcs << "      int16_t xs[" << S << "];\n      for (j = 0; j < " << K << "; ++j) xs[j] = (int16_t)"
            << in << ";\n";
      if (S > K) funcs << "      for (; j < " << S << "; ++j) xs[j] = 0;\n";
    }
    funcs << "      int32_t xp[" << S / 2 << "];\n";
    if (d.w_bytes == 1)
      // SXTB16 gives bytes 0 and 2 of a weight word, kiln_hi8 bytes 1 and 3: the inputs are paired to match,
      // (x0, x2) and (x1, x3) per group of four.
      funcs << "      for (j = 0; j < " << S / 4 << "; ++j) {\n        xp[2 * j] = KILN_PAIR(" << xs
            << "[4 * j], " << xs << "[4 * j + 2]);\n        xp[2 * j + 1] = KILN_PAIR(" << xs
            << "[4 * j + 1], " << xs << "[4 * j + 3]);\n      }\n";
    else
      funcs << "      for (j = 0; j < " << S / 2 << "; ++j) xp[j] = KILN_PAIR(" << xs << "[2 * j], " << xs
            << "[2 * j + 1]);\n";
    // Two weight words per iteration when the row allows: half the loop overhead.
    const int step = words % 2 == 0 ? 2 : 1;
    funcs << "      for (k = 0; k < " << R << "; ++k) {\n        const int32_t *w = " << w << ".w + k * "
          << words << ";\n        int32_t acc = 0;\n        for (j = 0; j < " << words << "; j += " << step
          << ") {\n";
    if (d.w_bytes == 1)
      funcs << "          const int32_t w0 = w[j]" << (step == 2 ? ", w1 = w[j + 1]" : "") << ";\n";
    for (int u = 0; u < step; ++u) {
      const std::string j = u ? "j + 1" : "j", p = u ? "2 * j + 2" : "2 * j", wu = "w" + std::to_string(u);
      if (d.w_bytes == 1)
        funcs << "          acc = __smlad(xp[" << p << "], __sxtb16(" << wu
              << "), acc);\n          acc = __smlad(xp[" << p << " + 1], kiln_hi8(" << wu << "), acc);\n";
      else
        funcs << "          acc = __smlad(xp[" << j << "], w[" << j << "], acc);\n";
    }
    funcs << "        }\n        " << out << "      }\n    }\n#else\n";
  }
  funcs << "    {\n";
  if (gather)
    funcs << "      " << xt << " xs[" << K << "];\n      for (j = 0; j < " << K << "; ++j) xs[j] = " << in
          << ";\n";
  else
    funcs << "      const " << xt << " *xs = xr;\n";
  funcs << "      for (k = 0; k < " << R << "; ++k) {\n        const " << wt << " *w = " << w
        << (d.smlad ? ".v" : "") << " + k * " << S << ";\n        " << acc
        << " acc = 0;\n        for (j = 0; j < " << K << "; ++j) acc += (" << acc
        << ")xs[j] * w[j];\n        " << out << "      }\n    }\n";
  if (d.smlad) funcs << "#endif\n";
  funcs << "  }\n}\n\n";
  // Cortex-M4 -O2 code-size model (arm-none-eabi-nm): the DSP loops or the portable ones, and the gathers.
  b.code_bytes += (d.smlad ? 170 : 100) + (gather ? 20 : 0) + (all_rows ? 0 : 30);
  return b;
}

}  // namespace kiln::codegen
