// Small helpers shared by the C and HLS emitters: integer types for a value range, constant arrays, and the
// sparse weight lists (zero weights are never emitted: a pruned weight costs no operation and no byte).
#pragma once
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "compress/deploy.h"
#include "compress/program.h"

namespace kiln::codegen {

// The integer program (compress/program.h) the emitters print, shared with the deployed model.
using compress::Buffer;
using compress::Op;
using compress::Program;
using compress::signed_bits;
using compress::TypeTable;
using compress::Window;

// The deployed model's program named `name`, checked against the limits of the generated code: every buffer
// and table index fits 32-bit integers. Errors name the layer.
Program prepare(const compress::DeployedModel& d, const std::string& name);

// The narrowest of int8/16/32/64 (or uint8/16/32 for indices) holding [lo, hi].
int int_bytes(int64_t lo, int64_t hi);
std::string int_type(int64_t lo, int64_t hi);
std::string uint_type(int64_t max);
int uint_bytes(int64_t max);

// A C literal for v of the given byte width (INT64_C for 8-byte values).
std::string int_literal(int64_t v, int bytes);

// A C float literal that reads back exactly (hexadecimal, C99).
std::string hexfloat(float v);

// `static const TYPE NAME[N] = {...};` (a one-element dummy for an empty list: C has no empty arrays).
// Returns the bytes of the array in flash.
int64_t write_array(std::ostream& os, const std::string& qualifiers, const std::string& name,
                    const std::vector<int64_t>& values, int bytes, bool is_unsigned = false);

// The nonzero weights of a multiply-accumulate op grouped by output channel n: for each, the offset of its
// input relative to the window origin (Dense: the input index j; Conv: (kh * W + kw) * C + c; Depthwise:
// (kh * W + kw) * C, the channel added at run time), its kernel row and column (for padding checks) and
// its aligned code.
struct SparseWeights {
  std::vector<int64_t> start;  // [n_out + 1]: channel n's taps are start[n] .. start[n+1]-1
  std::vector<int64_t> offset, kh, kw, value;
};
SparseWeights sparse_weights(const Op& op);

// hls4ml's reduce() over e[0] .. e[n - 1] as statements `const TYPE sK = sum(a, b);` written to os (indented
// for a loop body), splitting as compress::reduce_left; returns the expression of the whole sum.
std::string adder_tree(std::ostream& os, int64_t n, const std::string& type,
                       const std::function<std::string(const std::string&, const std::string&)>& sum);

// An identifier from a layer name (letters, digits, underscores; not starting with a digit).
std::string identifier(const std::string& s);

}  // namespace kiln::codegen
