// sigmoid, tanh and softmax as the lookup tables hls4ml builds by default, so that training sees what the
// firmware computes. Checked against fastmachinelearning/hls4ml (the classic io_parallel kernels):
//   hls4ml/templates/vivado/nnet_utils/nnet_activation.h: init_sigmoid_table, sigmoid, init_tanh_table, tanh,
//     softmax_real_val_from_idx, softmax_idx_from_real_val, init_exp_table, init_invert_table,
//     softmax_latency, softmax_stable;
//   hls4ml/templates/vivado/nnet_utils/nnet_common.h: reduce, Op_add, Op_max; nnet_helpers.h: ceillog2;
//   hls4ml/backends/fpga/fpga_backend.py: defaults (Activation: table_size 1024, table_t ap_fixed<18,8>;
//     Softmax: implementation 'stable', exp_table_t = inv_table_t = ap_fixed<18,8,AP_RND,AP_SAT>);
//   hls4ml/backends/fpga/passes/fix_softmax_table_size.py: the softmax table size clamp.
// Newer hls4ml (core_templates.py with exp_table_size, inv_table_size, accum_t, inv_inp_t, inp_norm_t,
// exp_scale) has a different stable softmax (x_max - x in an unsigned type, tables of exp(-x)); it is NOT
// modelled here.
//
// ---- sigmoid and tanh ----------------------------------------------------------------------------------
// A table of N entries (N = table_size, a power of two) over [-R, R) (R = range: 8 for sigmoid, 4 for
// tanh; hls4ml hard-codes both). Entry j holds f at x_j = 2R (j - N/2) / N, computed in float32 as the
// C simulation does (sigmoid: 1.0 / (1 + expf(-x)) with the sum in float and the quotient rounded to
// float; tanh: tanhf), then converted to table_type with its rounding and overflow (default
// ap_fixed<18,8> = AP_TRN (floor) and AP_WRAP: values on a grid of 2^-10, rounded DOWN).
// An input x (of any fixed-point type; here a float) maps to
//   index = clamp(trunc(x * N / (2R)) + N/2, 0, N - 1)        (trunc = toward zero, as int() of ap_fixed)
// so for x >= 0 entry j covers [x_j, x_{j+1}), for x < 0 it covers (x_{j-1}, x_j]: the entry N/2 = f(0)
// serves (-2R/N, 2R/N), x <= -R gives entry 0 and x >= R - 2R/N gives entry N-1. With N = 1024, R = 8:
// index = trunc(64 x) + 512.
//
// ---- softmax (stable, the default; or latency) ---------------------------------------------------------
// The input x is a vector of input_type (data_T; x is first converted to it, a no-op for values of that
// type). With W the width of a type and n = log2(N) the table's address bits, a value's index is its top
// n bits, i.e. floor(code / 2^(W - n)) of its W-bit two's complement code; index j stands for the value
// whose top bits are j and lower bits 0 (the low end of its bin; for a signed type j >= N/2 is negative).
//   stable:  m = max x;  d_i = x_i - m, held in ap_fixed<W, I, AP_RND, AP_SAT> (I = input_type's integer
//            bits with the sign), then converted back to input_type;  e_i = exp_table[index(d_i)]
//   latency: e_i = exp_table[index(x_i)]
//   exp_table[j] = exp_table_type(expf(value of j in input_type))
//   s = the e_i summed by hls4ml's balanced adder tree, each partial sum converted to exp_table_type
//   inv = inv_table[index of s in exp_table_type];  inv_table[j] = inv_table_type(1.0f / value of j in
//         exp_table_type)   (entry 0 is 1/0 = +inf: saturates under SAT, 0 under WRAP)
//   y_i = e_i * inv (exact), converted to result_type when one is given.
// The effective table size is min(table_size, 2^min(W_input, W_inv_table)) (fix_softmax_table_size.py).
// The invert table is indexed by the top n bits of an exp_table_type word: with ap_fixed<18,8> and
// N = 1024 its bins are 2^(8-10) = 0.25 wide, so 1/s is 1/(s rounded down to a quarter) and the outputs
// of the default hardware can sum to as much as 1.25 (s in [1, 1.25) gives 1/1). That is what the
// hardware computes; widen inv precision (e.g. a smaller integer part) to do better.
//
// ---- gradients (straight-through surrogate, as HGQ) --------------------------------------------------
// The table output is piecewise constant, so its true derivative is 0 almost everywhere. The ops return
// the table values in the forward and the derivative of the REAL function at the input in the backward:
// sigmoid'(x) = s(1 - s), tanh'(x) = 1 - t^2, softmax: dx = y (g - sum(g y)) with y the real softmax of
// x. Outside the table's range the forward is clamped while the backward keeps the real derivative.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "compress/fixed_point.h"
#include "engine/autograd.h"
#include "engine/config.h"

namespace kiln::compress {

// ap_fixed<18,8> (AP_TRN, AP_WRAP): hls4ml's default table_t for sigmoid and tanh.
constexpr FixedType kHls4mlTableType{1, 7, 10, Round::kTrn, Overflow::kWrap};
// ap_fixed<18,8,AP_RND,AP_SAT>: hls4ml's default exp_table_t and inv_table_t for softmax.
constexpr FixedType kHls4mlSoftmaxTableType{1, 7, 10, Round::kRnd, Overflow::kSat};
// ap_fixed<16,6>: hls4ml's default precision, used here for the softmax's input and result types.
constexpr FixedType kHls4mlDefaultType{1, 5, 10, Round::kTrn, Overflow::kWrap};

// Largest table accepted (2^20 entries); hls4ml sets no limit, but the index values must stay exact.
constexpr int kMaxTableSize = 1 << 20;

// ---- ap type strings ------------------------------------------------------------------------------
// "ap_fixed<W,I>", "ap_fixed<W,I,AP_RND,AP_SAT>", "ap_ufixed<W,I,...>", and hls4ml's "fixed<...>" /
// "ufixed<...>" spellings (modes as parse_round/parse_overflow accept them; spaces allowed). A fifth
// parameter (saturation bits) is accepted only when 0. ap_fixed<W,I> is k = 1, i = I - 1, f = W - I;
// ap_ufixed<W,I> is k = 0, i = I, f = W - I. Throws InputError naming the string on anything else
// (W < 1, W > 64, missing fields, unknown modes).
FixedType parse_ap_type(const std::string& text);
// The ap spelling of t, modes omitted when they are the defaults: "ap_fixed<18,8>",
// "ap_fixed<18,8,AP_RND,AP_SAT>", "ap_ufixed<8,0,AP_TRN,AP_SAT>".
std::string ap_type_string(const FixedType& t);

// ---- sigmoid and tanh -----------------------------------------------------------------------------
// kGelu (kiln's, not hls4ml's): a table of gelu(x) over [-R, R); x >= R passes through (gelu(x) = x to
// within 2e-4 there for R = 4) and x < -R gives 0, so the value is always a table entry or x itself (exact).
enum class LutFunction { kSigmoid, kTanh, kGelu };

struct LutSpec {
  LutFunction function = LutFunction::kSigmoid;
  int table_size = 1024;  // N: a power of two in [2, kMaxTableSize]
  double range = 8.0;     // R: the table covers [-R, R); a power of two in [2^-16, 2^16]
  FixedType table_type = kHls4mlTableType;

  static LutSpec sigmoid() { return {LutFunction::kSigmoid, 1024, 8.0, kHls4mlTableType}; }
  static LutSpec tanh() { return {LutFunction::kTanh, 1024, 4.0, kHls4mlTableType}; }
  static LutSpec gelu() { return {LutFunction::kGelu, 1024, 4.0, kHls4mlTableType}; }
  static LutSpec defaults(LutFunction f) {
    return f == LutFunction::kSigmoid ? sigmoid() : f == LutFunction::kTanh ? tanh() : gelu();
  }
};

// Throws InputError naming the field (table_size, table_range, table_type) on a bad value. The range
// must be a power of two so that x * N / (2R) is exact, as hls4ml's "* table_size / 16" is.
void validate(const LutSpec& spec);

// Overrides from a config mapping, on top of LutSpec::defaults(function). Keys (all optional):
//   table_size: 1024               a power of two in [2, 1048576]
//   table_range: 8                 R, the table covers [-R, R); a power of two (NOT configurable in
//                                  hls4ml's templates, which hard-code 8 and 4: codegen must honour it)
//   table_type: "ap_fixed<18,8>"   see parse_ap_type
// Errors are InputError with the key's file:line:col and name. Only these keys are read; the caller
// checks the mapping's other keys (lut_config_keys() lists these for check_unused).
LutSpec parse_lut(const Config& c, LutFunction function);
const std::vector<std::string>& lut_config_keys();

double lut_input(int j, const LutSpec& spec);  // x_j = 2R (j - N/2) / N (exact)
double lut_entry(int j, const LutSpec& spec);  // the table's entry j, exactly as the hardware holds it
std::vector<double> lut_table(const LutSpec& spec);
int lut_index(double x, const LutSpec& spec);  // the rule above; x must not be NaN

// The hardware's value at x (NaN gives NaN). Default specs are hls4ml's.
double sigmoid_lut(double x, const LutSpec& spec = LutSpec::sigmoid());
double tanh_lut(double x, const LutSpec& spec = LutSpec::tanh());

// Elementwise ops, any shape; forward = the table values (exact in float32: table_type's width must be at
// most 24 bits, else InputError), backward = the real function's derivative (see above).
Var sigmoid_lut(const Var& x, const LutSpec& spec = LutSpec::sigmoid());
Var tanh_lut(const Var& x, const LutSpec& spec = LutSpec::tanh());
double gelu_lut(double x, const LutSpec& spec = LutSpec::gelu());
Var gelu_lut(const Var& x, const LutSpec& spec = LutSpec::gelu());

// ---- softmax --------------------------------------------------------------------------------------
enum class SoftmaxImpl { kStable, kLatency };

struct SoftmaxLutSpec {
  SoftmaxImpl implementation = SoftmaxImpl::kStable;
  int table_size = 1024;  // before the clamp of softmax_table_size()
  FixedType exp_table_type = kHls4mlSoftmaxTableType;
  FixedType inv_table_type = kHls4mlSoftmaxTableType;
  FixedType input_type = kHls4mlDefaultType;                  // data_T, the previous layer's result
  std::optional<FixedType> result_type = kHls4mlDefaultType;  // res_T; nullopt: the exact product
  // kiln's extension for attention: the exp table holds exp(scale * x), so softmax(scale * x) (the 1/sqrt(d)
  // of scaled dot-product attention) costs nothing at run time. 1: hls4ml's softmax.
  double scale = 1;
};

// Throws InputError naming the field on a bad value: table_size as for LutSpec; types of width 1..48
// with |i| <= 64; exp_table_type at least log2(effective table size) bits wide (its top bits index the
// invert table; hls4ml would slice out of range).
void validate(const SoftmaxLutSpec& spec);

// Overrides on top of `base` (which carries the input and result types, set by the caller from the
// neighbouring layers). Keys (all optional): implementation: stable | latency; table_size;
// exp_table_type and inv_table_type (ap type strings). InputError with the key's location otherwise
// ("legacy" and "argmax" are hls4ml implementations not modelled here).
SoftmaxLutSpec parse_softmax_lut(const Config& c, const SoftmaxLutSpec& base = {});
const std::vector<std::string>& softmax_lut_config_keys();

// min(table_size, 2^min(width(input_type), width(inv_table_type))).
int softmax_table_size(const SoftmaxLutSpec& spec);
// The index of value v (a value of type t, i.e. already quantized to it) in a table of table_size entries:
// its top log2(table_size) bits. And the value that index j stands for in type t.
int softmax_index(double v, const FixedType& t, int table_size);
double softmax_index_value(int j, const FixedType& t, int table_size);
std::vector<double> softmax_exp_table(const SoftmaxLutSpec& spec);
// ap_fixed<W, I, AP_RND, AP_SAT> with the input type's W and I (I counts the sign): the type the stable
// softmax holds x - max(x) in.
FixedType softmax_diff_type(const FixedType& input);
// hls4ml's reduce() splits n > 1 terms into a left part of the largest power of two below n and the rest,
// sums each part the same way, then adds the two (every partial sum converted to the accumulator type).
int64_t reduce_left(int64_t n);
std::vector<double> softmax_inv_table(const SoftmaxLutSpec& spec);

// One softmax vector as the hardware computes it (the steps above). Empty in, empty out; any NaN in x
// makes every output NaN.
std::vector<double> softmax_lut(const std::vector<double>& x, const SoftmaxLutSpec& spec = {});

// Along `axis` of any shape. Forward: softmax_lut of each lane, as float (exact when result_type is set
// with width <= 24, else the product rounded to float; InputError if result_type is wider than 24
// bits). Backward: the real softmax's (see above).
Var softmax_lut(const Var& x, int axis = -1, const SoftmaxLutSpec& spec = {});

}  // namespace kiln::compress
