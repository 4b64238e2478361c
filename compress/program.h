// The lowered integer program: what the deployed model runs and what the C and HLS generators print.
// Every tensor is one integer buffer on a single grid (all its codes share `frac` fractional bits; an element
// with fewer fractional bits is shifted left, which is exact), so that every op is a plain integer loop.
// compress::DeployedModel::freeze builds it through ProgramBuilder (one call per layer part), `run` is its
// only interpreter, and codegen/ prints the same ops.
//
//   const Program& p = deployed.program();
//   std::vector<int64_t> y = run(p, quantize_input(p, x_row));   // codes * 2^-p.out().frac
//
// A new op kind: a line in KILN_OP_KINDS, its builder method and interpreter function side by side (in the
// program_*.cc file of its family: program_builder.cc input, quantize and residual add, program_mac.cc,
// program_activation.cc, program_reduce.cc, program_transformer.cc), and its print functions: a case in
// the switches of codegen/emit_c.cc and codegen/emit_hls.cc, a kernel writer in emit_c_layers.cc and
// emit_hls_layers.cc where it needs more than a line. Switches over Op::Kind have no default and compile with
// -Werror=switch, so a forgotten case does not build.
#pragma once
#include <string>
#include <vector>

#include "compress/fixed_point.h"
#include "compress/lut_codes.h"
#include "engine/nn/layer.h"

namespace kiln::compress {

// Code c with fc fractional bits, converted to type t with t's rounding and overflow, in integers only:
// requantize(c, fc, t) * 2^-t.f == quantize(c * 2^-fc, t) for every mode (S_RND rounds as RND).
int64_t requantize(int64_t c, int fc, const FixedType& t);

// requantize(c, fc, t) * 2^out_shift with its per-type constants computed once (the interpreter's quantize
// op runs one per element). requantize itself is Requantizer(fc, t)(c): one definition.
class Requantizer {
 public:
  Requantizer(int fc, const FixedType& t, int out_shift = 0);
  int64_t operator()(int64_t c) const {
    if (zero_) return 0;
    int64_t q;
    if (s_ <= 0) {
      q = c * (int64_t{1} << -s_);  // finer target grid: exact
    } else if (s_ >= 63) {
      // |c| < 2^62, so |c| / 2^s < 1/2: every nearest mode gives 0, TRN floors, TRN_ZERO truncates.
      q = (t_.round == Round::kTrn && c < 0) ? -1 : 0;
    } else {
      q = c >> s_;                        // floor (arithmetic shift)
      const int64_t r = c & (step_ - 1);  // 0 <= r < step
      q += round_up(c, q, r) ? 1 : 0;
    }
    if (q < lo_ || q > hi_) q = overflow(q);
    return q * (int64_t{1} << out_shift_);
  }

 private:
  bool round_up(int64_t c, int64_t q, int64_t r) const {
    switch (t_.round) {
      case Round::kTrn:
        return false;
      case Round::kTrnZero:
        return c < 0 && r != 0;
      case Round::kRnd:
      case Round::kStochastic:
        return r >= half_;
      case Round::kRndZero:
        return r > half_ || (r == half_ && q < 0);
      case Round::kRndMinInf:
        return r > half_;
      case Round::kRndInf:
        return r > half_ || (r == half_ && q >= 0);
      case Round::kRndConv:
        return r > half_ || (r == half_ && (q & 1) != 0);
    }
    return false;
  }
  int64_t overflow(int64_t q) const;  // q outside [lo, hi]: t's overflow mode
  friend class RequantizeRows;

  FixedType t_;
  int s_ = 0, out_shift_ = 0;
  int64_t step_ = 1, half_ = 0, lo_ = 0, hi_ = 0;
  bool zero_ = false;  // zero width: pruned
  // The branch-free form RequantizeRows uses when every entry has it: q = ((c + add) >> rs) << ls for RND
  // (add = half a step) and TRN (add = 0), then the overflow mode on [lo, hi] (WRAP: sign extension from
  // bit `width` - 1 when k, the low `width` bits when not).
  bool simple_ = false;
  int rs_ = 0, ls_ = 0, width_ = 0;
  int64_t add_ = 0;
};

// A quantize op's requantizers, entry e serving the elements j with j % entries == e (uniform, per channel or
// per element), with their branch-free form precomputed when every entry has one.
class RequantizeRows {
 public:
  RequantizeRows() = default;
  explicit RequantizeRows(std::vector<Requantizer> rq);
  bool empty() const { return rq_.empty(); }
  // y[j] = rq[j % entries](x[j]) for j < n, a multiple of the entries.
  void run(const int64_t* x, int64_t* y, int64_t n) const;

  // The branch-free form per entry, one array per field (the loop loads them as vectors): add, the shifts,
  // the range [lo, hi], the WRAP mask 2^width - 1 and sign bit 2^(width-1), the output shift, and keep (0 for
  // a pruned entry, else all ones).
  struct Fast {
    std::vector<int64_t> add, rs, ls, lo, hi, mask, sign, out_shift, keep;
    size_t size() const { return add.size(); }
  };

 private:
  std::vector<Requantizer> rq_;
  Fast fast_;  // empty: some entry has no simple form
};

// A convolution or pooling window as 2-d (a 1-d window is 2-d with H = 1), channels-last, with the
// padding before each axis (TF "same" padding puts the odd pixel after).
struct Window {
  int64_t H = 1, W = 1, C = 1, KH = 1, KW = 1, SH = 1, SW = 1, OH = 1, OW = 1, PH = 0, PW = 0;
  bool padded() const;  // some window reaches outside the input
  // Calls f(tap, base) for every kernel tap (tap = kh * KW + kw) of output position (oh, ow) that lies
  // inside the input, with base = (ih * W + iw) * C the offset of its input pixel; padded taps are skipped.
  template <class F>
  void for_each_tap(int64_t oh, int64_t ow, F&& f) const {
    for (int64_t kh = 0; kh < KH; ++kh) {
      const int64_t ih = oh * SH - PH + kh;
      if (ih < 0 || ih >= H) continue;
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t iw = ow * SW - PW + kw;
        if (iw >= 0 && iw < W) f(kh * KW + kw, (ih * W + iw) * C);
      }
    }
  }
};
Window window_of(const Shape& in, const Shape& out, const nn::Geometry& g);

// Codes with `frac` fractional bits; element e lies in [lo[e], hi[e]] for every possible input.
struct Buffer {
  Shape shape;  // per sample
  int64_t size = 0;
  int frac = 0;
  std::vector<int64_t> lo, hi;
  // Codes the buffer also holds before an in-place op (ReLU, hard tanh) narrows lo/hi: its storage type
  // must hold these too.
  int64_t held_min = 0, held_max = 0;
  int64_t min() const;  // over lo and held_min: what the storage type must hold
  int64_t max() const;
};

// Signed bits (with sign) that hold every value in [lo, hi].
int signed_bits(int64_t lo, int64_t hi);

// Per-element fixed-point types stored compactly: one entry (uniform), one per channel (the last axis),
// or one per element.
struct TypeTable {
  enum Pattern { kUniform, kChannel, kElement } pattern = kUniform;
  int k = 1;
  Round round = Round::kRnd;
  Overflow overflow = Overflow::kSat;
  std::vector<int> f, m;  // fractional bits and i + f per entry (width k + m; width <= 0: pruned)
  int64_t entry(int64_t e, int64_t channels) const;  // index into f/m for element e
  int width(size_t j) const { return k + m[j]; }
  FixedType type(size_t j) const { return {k, m[j] - f[j], f[j], round, overflow}; }
};

// The op kinds in one list: the enum, the report's name and the interpreter function of each kind
// (a program_*.cc file, beside the kind's builder method), so they cannot disagree.
#define KILN_OP_KINDS(X)                        \
  X(kQuantize, "quantize", run_quantize)        \
  X(kDense, "dense", run_mac)                   \
  X(kConv, "conv", run_mac)                     \
  X(kDepthwise, "depthwise_conv", run_mac)      \
  X(kRelu, "relu", run_relu)                    \
  X(kMaxPool, "max_pool", run_max_pool)         \
  X(kLut, "table", run_lut)                     \
  X(kHardTanh, "hard_tanh", run_hard_tanh)      \
  X(kSoftmax, "softmax", run_softmax)           \
  X(kAvgPool, "avg_pool", run_avg_pool)         \
  X(kAdd, "add", run_add)                       \
  X(kScores, "attention_scores", run_scores)    \
  X(kContext, "attention_context", run_context) \
  X(kLayerNorm, "layer_norm", run_layer_norm)   \
  X(kAddConst, "add_constant", run_add_const)   \
  X(kSlice, "slice", run_slice)                 \
  X(kSumSquares, "sum_squares", run_sum_squares)

struct Op {
#define KILN_OP_ENUM(kind, name, run) kind,
#define KILN_OP_COUNT(kind, name, run) +1
  enum Kind { KILN_OP_KINDS(KILN_OP_ENUM) } kind = kQuantize;
  static constexpr size_t kNumKinds = 0 KILN_OP_KINDS(KILN_OP_COUNT);
#undef KILN_OP_ENUM
#undef KILN_OP_COUNT
  std::string name;     // the layer (and part) it comes from, for comments and reports
  int in = 0, out = 0;  // buffer indices (kRelu, kHardTanh: in place, in == out)
  int in2 = -1;         // kAdd: y = in + in2 (a residual block's kept input), each shifted to out's grid
  // kQuantize: element e of `in` becomes the code of types.type(entry(e)), placed on out's grid.
  TypeTable types;
  // kDense / kConv / kDepthwise: acc = bias[n] + 2^prod_shift * sum(x * w), on out's grid.
  // Dense: weights[j * n_out + n] over the last axis (rows = leading positions); Conv: weights in the
  // layer's layout ((kh * KW + kw) * C + c) * n_out + n; Depthwise: (kh * KW + kw) * C + n.
  // kScores: y[h, i, j] = sum_c q[i, h dh + c] k[j, h dh + c] with x = [T, 3D] = (Q, K, V); kContext:
  // y[i, h dh + c] = sum_j p[h, i, j] v[j, h dh + c], p = in ([H, T, T]), v from in2 ([T, 3D]). Both: rows =
  // T, n_out = H heads, n_in = dh features per head.
  // kLayerNorm: per row of n_in codes, x^ = ln_normalize (compress/layer_norm_fixed.h, table in `table`),
  // y = bias[e] + 2^prod_shift x^ weights[e] (gamma on w_frac, beta on out's grid); rows tokens.
  // kAddConst: y[e] = x[e] 2^prod_shift + bias[e] (a learned constant per element, on out's grid).
  // kSlice: y[e] = x[e] for the first y.size elements (a VAE's mu), same grid. kSumSquares: y[0] = sum_e
  // x[e]^2 over the n_in elements, exact on the grid 2^-(2 x.frac); partial_bound bounds every partial sum.
  int64_t n_in = 0, n_out = 0, rows = 1;
  Window win;  // kConv / kDepthwise / kMaxPool / kAvgPool (y = trunc(window sum / real inputs), same grid)
  int w_frac = 0, prod_shift = 0;
  std::vector<int64_t> weights, bias;  // aligned codes; zero = pruned (never emitted)
  std::vector<int> weight_bits;        // each weight's width in bits (report)
  int64_t partial_bound = 0;           // |bias| + sum |x * w| <= this for every output and partial sum
  // kDense / kConv: the weights as float when partial_bound < 2^24, else as double when it is < 2^53 (set by
  // finish()), and the interpreter multiplies the codes as one float (double) matrix product: every product
  // and every partial sum, in any order, is an integer of magnitude <= partial_bound, which the type holds
  // exactly, so the products, the sums and fused multiply-adds are all exact and the result is the integer
  // sum (an input code too wide for the type only ever multiplies zero weights). Otherwise int64.
  std::vector<float> weights_f;
  std::vector<double> weights_d;
  // kDense / kConv: every input code has magnitude < 2^51 (the fast int64 to double conversion applies).
  bool x_below_2_51 = false;
  // kQuantize: one Requantizer per entry of `types`, from in's grid onto out's (set by finish()).
  RequantizeRows requantizers;
  // kLut: y = table[clamp(trunc(x * 2^lut_shift) + N/2, 0, N - 1)] (compress/lut_codes.h), table codes on
  // out's grid. kSoftmax: softmax_codes() on every lane of the last axis, out on softmax_out_frac.
  LutSpec lut;
  std::vector<int64_t> table;
  int lut_shift = 0;
  // kLut of a gelu table: x >= pass_above (R on x's grid) gives x 2^pass_shift, x < -pass_above gives 0,
  // else the entry 2^table_shift (out's grid is the finer of x's and the table's).
  int64_t pass_above = 0;
  int table_shift = 0, pass_shift = 0;
  SoftmaxLutSpec softmax;
  SoftmaxTables softmax_tables;
  int64_t nonzero() const;

  // Calls f(x index, weight index) for every product that output element o of a multiply-accumulate sums.
  template <class F>
  void for_each_term(int64_t o, F&& f) const {
    const int64_t n = o % n_out;
    if (kind == kDense) {
      const int64_t r = o / n_out;
      for (int64_t j = 0; j < n_in; ++j) f(r * n_in + j, j * n_out + n);
      return;
    }
    const int64_t pos = o / n_out;
    win.for_each_tap(pos / win.OW, pos % win.OW, [&](int64_t tap, int64_t base) {
      if (kind == kDepthwise) {
        f(base + n, tap * win.C + n);
      } else {
        for (int64_t c = 0; c < win.C; ++c) f(base + c, (tap * win.C + c) * n_out + n);
      }
    });
  }
};

// The report's name of an op kind (from KILN_OP_KINDS).
const char* op_kind_name(Op::Kind k);

struct Program {
  std::string name;
  Shape input_shape;
  TypeTable input_types;        // the model input's quantizer (float -> codes, done by the float wrapper)
  std::vector<Buffer> buffers;  // buffers[0] is the input codes
  // Each input code's range as the input types give it (buffers[0]'s own range narrows when an in-place op,
  // such as a relu, follows the input): run() refuses codes outside it.
  std::vector<int64_t> input_lo, input_hi;
  std::vector<Op> ops;
  int output = 0;                  // buffer holding the result
  std::vector<float> mean, scale;  // standardisation of raw features (empty: none)
  const Buffer& input() const { return buffers.front(); }
  const Buffer& out() const { return buffers[static_cast<size_t>(output)]; }
};

// The float -> code step of the model input (x already standardised), exactly as the quantizer does: n
// samples, one after the other.
std::vector<int64_t> quantize_input(const Program& p, const float* x, int64_t n = 1);
// Integer evaluation of the program on one sample's input codes; returns the output codes. Throws ShapeError
// for a wrong number of codes and InputError for a code outside its input type's range.
std::vector<int64_t> run(const Program& p, const std::vector<int64_t>& input_codes);

// The codes of a run over `samples` samples at once: buffer b holds samples x buffers[b].size codes, one
// sample after the other (the layout of a batch), so that the ops run as one matrix product or one pass over
// every sample instead of one call each.
struct Codes {
  std::vector<std::vector<int64_t>> buf;  // one vector per program buffer
  int64_t samples = 1;
  std::vector<int64_t>& operator[](size_t b) { return buf[b]; }
  const std::vector<int64_t>& operator[](size_t b) const { return buf[b]; }
};
// run on `samples` samples of in.size codes each at input_codes, in a caller's workspace that keeps its
// buffers from one call to the next (no allocation or fill per call); returns the workspace's output buffer
// (samples x out.size codes).
const std::vector<int64_t>& run(const Program& p, const int64_t* input_codes, int64_t samples,
                                Codes& workspace);

// The interpreter of each op kind: reads buffer op.in (and op.in2) of `buf`, writes buffer op.out for all
// buf.samples samples (every element of it: a reused workspace still holds an earlier run's codes).
#define KILN_OP_RUN_DECL(kind, name, fn) void fn(const Program& p, const Op& op, Codes& buf);
KILN_OP_KINDS(KILN_OP_RUN_DECL)
#undef KILN_OP_RUN_DECL

// A multiply-accumulate as the quantized layer computes it: codes with their own fractional bits each.
struct MacParams {
  Shape in_shape, out_shape;
  bool dense = false;  // else a convolution (depthwise if geom.depthwise) with geometry geom
  nn::Geometry geom;
  std::vector<int64_t> w_code,
      b_code;  // kernel in the layer's layout, bias per output channel (may be empty)
  std::vector<int> w_frac, b_frac;
  std::vector<FixedType> w_types;  // each weight's type (its width goes to the report)
};

// Builds a Program op by op, in execution order, with the exact value range of every buffer. Each method
// lowers one part of a layer; `name` names it in reports and generated comments. Errors name the layer.
class ProgramBuilder {
 public:
  // The model input: float features -> codes of `types` (one per element).
  void input(const Shape& shape, const std::vector<FixedType>& types);
  void quantize(const std::string& name, const std::vector<FixedType>& types);
  void mac(const std::string& name, const MacParams& m);
  void relu(const std::string& name);
  void hard_tanh(const std::string& name);
  void lut(const std::string& name, const LutSpec& spec);
  void softmax(const std::string& name, const SoftmaxLutSpec& spec);
  void max_pool(const std::string& name, const Shape& in_shape, const Shape& out_shape,
                const nn::Geometry& g);
  void avg_pool(const std::string& name, const Shape& in_shape, const Shape& out_shape,
                const nn::Geometry& g);
  // A residual block: keep the current buffer (requantized to `types` if not empty, else as it is) until the
  // matching add, which sums the block's output and the kept input on the finer grid.
  void keep(const std::string& name, const std::vector<FixedType>& types);
  void add(const std::string& name);
  // Scaled dot-product attention over the current buffer [T, 3D] = (Q, K, V): scores, their softmax through
  // `spec`'s tables (its scale is the 1/sqrt(dh)), and the context [T, D].
  void attention(const std::string& name, int64_t heads, const SoftmaxLutSpec& spec);
  // LayerNorm over the last axis of the current buffer: gamma (weight codes) and beta (bias codes).
  void layer_norm(const std::string& name, const MacParams& m);
  // y = x + c, c a constant per element (codes c_code with fractions c_frac; a positional embedding).
  void add_const(const std::string& name, const std::vector<int64_t>& c_code, const std::vector<int>& c_frac);
  // The first shape_numel(shape) values of the current buffer, as they are (a VAE's mu at inference).
  void slice(const std::string& name, const Shape& shape);
  // y [1] = the sum of the squares of every element of the current buffer, exact.
  void sum_squares(const std::string& name);

  bool started() const { return !p_.buffers.empty(); }
  const Buffer& current() const { return p_.buffers[static_cast<size_t>(cur_)]; }
  Program finish();

 private:
  void push(Op op, Buffer y);  // appends op writing the new buffer y, which becomes current
  void in_place(Op op);        // appends op rewriting the current buffer
  Op make(Op::Kind kind, const std::string& name) const;

  Program p_;
  int cur_ = -1;
  std::vector<int> kept_;  // buffers holding residual blocks' inputs, innermost last
};

}  // namespace kiln::compress
