// Code generation for a found expression: a C99 function and an HLS C++ function.
//
// C99 (export_c): float NAME(const float x[F]) returning the expression, every operation in float,
// fully parenthesised, in the evaluation order of the engine. Table ops become static const float tables
// and a lookup function built exactly as lut.h builds them, so an expression of arithmetic and table ops
// needs no libm and reproduces the engine bit for bit on every input (compile with -ffp-contract=off,
// the default of -std=c99: a fused multiply-add would round differently). Other math goes through libm
// (sinf, expf, ...), which may differ from the engine's vectorised functions in the last bit.
//
// HLS (export_hls): the same function over a fixed-point type, hls4ml style (one line per output, every
// operation's result cast back to the type, constants cast to it, math from hls_math.h):
//   typedef ap_fixed<16, 6> kiln_t;        (hls4ml's default precision; --hls-type sets it)
//   typedef ap_fixed<18, 8> kiln_table_t;  (table entries; hls4ml's default table type)
// Table ops compute the index in ap_fixed<32, 16> as clamp(int((x - lo) * N / (hi - lo)), 0, N - 1):
// with the default ranges N / (hi - lo) is a power of two, so the index is exact for the fixed-point
// input; inputs that rounding to kiln_t moves across a bin edge read the neighbouring entry. This code is
// generated but was not synthesised here (no HLS tool on this machine).
//
//   std::string c = export_c(tree, names, "kiln_expr");
#pragma once
#include <string>
#include <vector>

#include "symreg/tree.h"

namespace kiln::symreg {

struct ExportInfo {
  std::string function = "kiln_expr";              // check_function_name; used as given, never renamed
  std::vector<std::string> feature_names;          // for the comment; x[i] in the code
  int features = 0;                                // length of x (>= the largest variable index + 1)
  std::string comment;                             // added to the header comment (e.g. complexity, loss)
  std::string hls_type = "ap_fixed<16, 6>";        // hls_fixed_type
  std::string hls_table_type = "ap_fixed<18, 8>";  // hls_fixed_type
};

// Both check info.function (check_function_name), export_hls also both types (hls_fixed_type): a bad one
// is an InputError, never code that does not compile.
std::string export_c(const Tree& t, const ExportInfo& info);
std::string export_hls(const Tree& t, const ExportInfo& info);

// True when the tree needs libm in C (any non-table math function).
bool needs_libm(const Tree& t);

// A C identifier made from text (invalid characters become '_', a leading digit gets a '_'), for names
// derived from data (column and class names); InputError when empty. Not for names the user chose.
std::string c_identifier(const std::string& text);

// The exported function's name, used exactly as given: an ASCII C identifier of at most 255 characters
// that is not a C or C++ keyword, not reserved (a leading '_' is reserved at file scope in C, "__"
// anywhere in C++, and the HLS export is C++), and not a name the generated files declare or include
// (main, <math.h>, the ap_ types, hls, kiln_t, kiln_lut_sin, ...). Otherwise InputError
// "WHAT: 'NAME' ..." saying why. `what` names the source, e.g. "--function".
void check_function_name(const std::string& name, const std::string& what = "function name");

// An HLS fixed-point type: ap_fixed<W, I> or ap_ufixed<W, I>, optionally followed by a quantization mode
// (AP_TRN, AP_TRN_ZERO, AP_RND, AP_RND_ZERO, AP_RND_MIN_INF, AP_RND_INF, AP_RND_CONV), an overflow mode
// (AP_WRAP, AP_SAT, AP_SAT_ZERO, AP_SAT_SYM) and saturation bits N = 0, as hls4ml writes them; 1 <= W <= 64
// and -64 <= I <= 64. The limits are those of kiln's host model (codegen/hls_host: one 64-bit word, no
// AP_WRAP_SM, N = 0). Returns the type with normalised spacing ("ap_fixed<16, 6, AP_RND, AP_SAT>");
// anything else is an InputError "WHAT: 'TEXT' ...". `what` names the source, e.g. "--hls-type".
std::string hls_fixed_type(const std::string& text, const std::string& what = "HLS type");

}  // namespace kiln::symreg
