#include "compress/lut_codes.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "compress/deploy.h"

namespace kiln::compress {

namespace {

int log2_of(double v) {  // v a power of two (validate() guarantees it for sizes and ranges)
  int e = 0;
  std::frexp(v, &e);
  return e - 1;
}

int width(const FixedType& t) { return t.k + t.i + t.f; }

std::vector<int64_t> codes_of(const std::vector<double>& values, int f) {
  std::vector<int64_t> c;
  c.reserve(values.size());
  for (double v : values) c.push_back(to_code(v, f));
  return c;
}

// hls4ml's reduce() (see reduce_left), every partial sum converted to t (the codes are all on t's grid, so
// only t's overflow mode can act).
int64_t tree_sum(const int64_t* v, int64_t n, const FixedType& t) {
  if (n == 1) return v[0];
  const int64_t left = reduce_left(n);
  return requantize(tree_sum(v, left, t) + tree_sum(v + left, n - left, t), t.f, t);
}

}  // namespace

int lut_index_shift(int frac, const LutSpec& spec) {
  return log2_of(spec.table_size) - log2_of(2.0 * spec.range) - frac;
}

int lut_index_code(int64_t c, int frac, const LutSpec& spec) {
  const int shift = lut_index_shift(frac, spec);
  const int64_t n = spec.table_size;
  int64_t q = 0;  // trunc(c * 2^shift), clamped to [-n, n] (beyond that the index clamps anyway)
  if (shift >= 0) {
    if (c != 0) q = (shift > 40 || std::llabs(c) > n) ? (c > 0 ? n : -n) : c * (int64_t{1} << shift);
  } else if (-shift < 63) {
    q = c >= 0 ? c >> -shift : -((-c) >> -shift);  // toward zero, as int() of an ap_fixed
  }
  return static_cast<int>(std::clamp<int64_t>(q + n / 2, 0, n - 1));
}

std::vector<int64_t> lut_table_codes(const LutSpec& spec) {
  return codes_of(lut_table(spec), spec.table_type.f);
}

SoftmaxTables softmax_tables(const SoftmaxLutSpec& spec) {
  SoftmaxTables t;
  t.size = softmax_table_size(spec);
  t.exp = codes_of(softmax_exp_table(spec), spec.exp_table_type.f);
  t.inv = codes_of(softmax_inv_table(spec), spec.inv_table_type.f);
  return t;
}

int softmax_index_code(int64_t code, const FixedType& t, int size) {
  const int w = width(t), n = log2_of(size);
  const uint64_t word = static_cast<uint64_t>(code) & ((uint64_t{1} << w) - 1);  // W-bit two's complement
  return static_cast<int>(word >> (w - n));
}

int softmax_out_frac(const SoftmaxLutSpec& spec) {
  return spec.result_type ? spec.result_type->f : spec.exp_table_type.f + spec.inv_table_type.f;
}

void softmax_codes(const SoftmaxLutSpec& spec, const SoftmaxTables& tables, const int64_t* c, const int* frac,
                   int64_t n, int64_t* out) {
  if (n <= 0) return;
  const FixedType &in_t = spec.input_type, &exp_t = spec.exp_table_type, &inv_t = spec.inv_table_type;
  std::vector<int64_t> xq(static_cast<size_t>(n)), e(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) xq[static_cast<size_t>(j)] = requantize(c[j], frac[j], in_t);
  const int64_t m = *std::max_element(xq.begin(), xq.end());
  const FixedType diff_t = softmax_diff_type(in_t);
  for (int64_t j = 0; j < n; ++j) {
    int64_t a = xq[static_cast<size_t>(j)];
    if (spec.implementation == SoftmaxImpl::kStable)
      a = requantize(requantize(a - m, in_t.f, diff_t), in_t.f, in_t);
    e[static_cast<size_t>(j)] = tables.exp[static_cast<size_t>(softmax_index_code(a, in_t, tables.size))];
  }
  const int64_t s = tree_sum(e.data(), n, exp_t);
  const int64_t inv = tables.inv[static_cast<size_t>(softmax_index_code(s, exp_t, tables.size))];
  for (int64_t j = 0; j < n; ++j) {
    const int64_t p = e[static_cast<size_t>(j)] * inv;  // exact: validate() keeps the widths within 53 bits
    out[j] = spec.result_type ? requantize(p, exp_t.f + inv_t.f, *spec.result_type) : p;
  }
}

}  // namespace kiln::compress
