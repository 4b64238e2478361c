// The vectorised fast path of quantize_fixed (quantize_ops.h), bit for bit the scalar definition
// (fixed_point.h) where it applies: round-to-nearest (RND) or floor (TRN), any overflow mode, bits that
// broadcast as "index modulo nb" (per tensor, per channel, per element), every type at most 24 bits wide.
//
// Why it is exact in float32: x is a float and 2^f a power of two, so s = x * 2^f is exact (the kernel
// sends |s| >= 2^62, inf and NaN to the scalar path); floor(s) and s - floor(s) are exact; the rounded code
// r has at most 25 significant bits and is even when it has 25, so r and r * 2^-f are floats; and the code
// range [lo, hi] of a type at most 24 bits wide is exactly representable. The scalar path does the same steps
// in double, where they are exact as well, so both give the same float.
//
// The backward recomputes each element's code and region from the input instead of reading stored
// gradients or regions: its loop then holds floats only and vectorises 8 wide. A tensor with an element the
// float path could not take is differentiated element by element through quantize_surrogate (quantize_ops.h),
// the definition itself.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "compress/fixed_point.h"
#include "engine/tensor.h"

namespace kiln::compress::qkernel {

// One bit entry's constants ([nb] arrays, entry e serves elements j with j % nb == e).
struct Table {
  Round round = Round::kRnd;
  Overflow overflow = Overflow::kSat;
  int k = 1;
  bool training = false;
  std::vector<float> scale, inv;            // 2^f, 2^-f
  std::vector<float> hi, lo;                // code range
  std::vector<float> top, bottom;           // the saturated values hi * 2^-f, lo * 2^-f
  std::vector<float> modulus, inv_modulus;  // 2^(k+i+f) and its inverse, for WRAP at inference
  std::vector<float> above_df, above_di;    // surrogate gradients past the top (SAT*)
  std::vector<float> below_df, below_di;    // and below the bottom
  std::vector<int32_t> pruned;              // k + i + f <= 0 (int32: the element loop selects on it)
  std::vector<int> i, f;                    // the bits themselves, for the elements the scalar path takes
  int64_t nb() const { return static_cast<int64_t>(scale.size()); }
};

// The table for types (k, i[e], f[e], round, overflow), or null when the fast path does not apply to them
// (another rounding mode, a type wider than 24 bits, |f| > 64).
std::shared_ptr<const Table> make_table(int k, const std::vector<int>& i, const std::vector<int>& f,
                                        Round round, Overflow overflow, bool training);

// make_table for bits (i, f) of the same size and mode as `from`'s, recomputing only the entries whose bits
// differ from `from`'s: a training step changes a few rounded bits of a layer, and copying the rest costs far
// less than computing it (about 25 ns per entry). The result is make_table's, entry for entry.
std::shared_ptr<const Table> updated_table(const Table& from, const std::vector<int>& i,
                                           const std::vector<int>& f);

// out[j] = quantize_fixed's value of x[j] (n elements, n % nb == 0). Elements the float path cannot take
// (non-finite or huge codes, WRAP overflows at inference of codes >= 2^23) go through the scalar definition;
// returns 1 when there was such an element (its backward must then be the exact one), else 0. x and out must
// not overlap (a row may be computed twice, reading x again).
int forward(const Table& t, const float* x, float* out, int64_t n);

// The backward: gx[j] += g[j] * dxq/dx (gx may be null; gx_fresh: it was just allocated and is written as
// 0 + g[j] * dxq/dx, the bits of adding to a zero fill), df_acc[e] += sum of g[j] * dxq/df over the elements
// of entry e, and the same for di (either may be null), summed in double in ascending j. exact: forward
// returned 1 for this x, and every element goes through the scalar surrogate. gx == g (not with exact): in
// place, g's buffer becomes gx (0 + g[j] * dxq/dx), for an output gradient nobody reads afterwards.
void backward(const Table& t, const float* x, bool exact, const float* g, int64_t n, float* gx, bool gx_fresh,
              double* df_acc, double* di_acc);

// lo[e] = min(lo[e], x[j]), hi[e] = max(hi[e], x[j]) over the elements j with j % nb == e (n % nb == 0):
// an activation's range per bit entry, in the kernels' tiles (threads split entries, each entry's rows run in
// order, as in one loop).
void column_min_max(const float* x, int64_t n, int64_t nb, float* lo, float* hi);

// The forward's loops over one band of entries [ea, eb) of `rows` rows, for an op that consumes the
// quantizer's output a band at a time while it is in cache (compress/quantize_pool.h): x is the whole tensor
// (row r at r * nb), out holds the band only (row r's entry e at r * ld + e - ea). Single-threaded. Returns 1
// when some element needs the scalar definition: its value in out is then not the definition's, and the
// caller must take quantize_fixed's path for this x.
int forward_band(const Table& t, const float* x, int64_t rows, float* out, int64_t ld, int64_t ea,
                 int64_t eb);

// The loops run in AVX-512 on CPUs that have it (same bits as the baseline's AVX2, see
// quantize_kernel_loops.h). use_avx512(false) makes them run the baseline's, use_avx512(true) AVX-512's where
// the CPU has it; returns whether AVX-512 is now in use. For tests and measurements; not thread-safe against
// kernels running at the same time.
bool use_avx512(bool on);
bool avx512_in_use();

}  // namespace kiln::compress::qkernel
