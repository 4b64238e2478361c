// The lookup-table activations of lut.h (sigmoid, tanh, softmax as hls4ml builds them) on integer codes:
// the deployed fixed-point model evaluates them with these, and the code generators emit the same tables
// and the same index arithmetic, so all three agree bit for bit with the float ops of lut.h (which training
// uses). A value is code * 2^-frac throughout.
//
//   std::vector<int64_t> t = lut_table_codes(spec);               // entries on 2^-spec.table_type.f
//   int64_t y = t[lut_index_code(c, frac, spec)];                  // == sigmoid_lut(c * 2^-frac, spec)
//
//   SoftmaxTables st = softmax_tables(sspec);
//   softmax_codes(sspec, st, codes, fracs, n, out);               // out on 2^-softmax_out_frac(sspec)
#pragma once
#include <cstdint>
#include <vector>

#include "compress/lut.h"

namespace kiln::compress {

// ---- sigmoid and tanh -----------------------------------------------------------------------------
// lut_index(x) = clamp(trunc(x * N / (2R)) + N/2, 0, N - 1); for x = c * 2^-frac the product is
// c * 2^lut_index_shift(frac, spec) (N and 2R are powers of two), truncated toward zero.
int lut_index_shift(int frac, const LutSpec& spec);
int lut_index_code(int64_t c, int frac, const LutSpec& spec);
std::vector<int64_t> lut_table_codes(const LutSpec& spec);  // the table, as codes of spec.table_type

// ---- softmax --------------------------------------------------------------------------------------
struct SoftmaxTables {
  int size = 0;                   // softmax_table_size(spec)
  std::vector<int64_t> exp, inv;  // codes of exp_table_type and inv_table_type
};
SoftmaxTables softmax_tables(const SoftmaxLutSpec& spec);

// The index of a code of type t in a table of `size` entries: the top log2(size) bits of its W-bit two's
// complement word.
int softmax_index_code(int64_t code, const FixedType& t, int size);
// Fractional bits of the outputs: result_type's, or exp_table_type's + inv_table_type's without one.
int softmax_out_frac(const SoftmaxLutSpec& spec);

// One lane of n values (codes c[j] with frac[j] fractional bits) -> n output codes, exactly the steps of
// softmax_lut(): convert to input_type, (stable) subtract the maximum, look up exp, sum by hls4ml's
// balanced tree in exp_table_type, look up the inverse, multiply, convert to result_type.
void softmax_codes(const SoftmaxLutSpec& spec, const SoftmaxTables& tables, const int64_t* c, const int* frac,
                   int64_t n, int64_t* out);

}  // namespace kiln::compress
