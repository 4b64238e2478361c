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
  std::string function = "kiln_expr";      // C identifier
  std::vector<std::string> feature_names;  // for the comment; x[i] in the code
  int features = 0;                        // length of x (>= the largest variable index + 1)
  std::string comment;                     // added to the header comment (e.g. complexity, loss)
  std::string hls_type = "ap_fixed<16, 6>";
  std::string hls_table_type = "ap_fixed<18, 8>";
};

std::string export_c(const Tree& t, const ExportInfo& info);
std::string export_hls(const Tree& t, const ExportInfo& info);

// True when the tree needs libm in C (any non-table math function).
bool needs_libm(const Tree& t);

// A C identifier made from text (invalid characters become '_'); InputError when empty.
std::string c_identifier(const std::string& text);

}  // namespace kiln::symreg
