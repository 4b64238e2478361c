#include "symreg/columns.h"

#include <cstring>
#include <new>

#include "engine/check.h"
#include "symreg/kernels.h"

namespace kiln::symreg {

AlignedFloats::AlignedFloats(size_t n) : n_(n) {
  size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  if (bytes == 0) bytes = 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  p_.reset(p);
}

int64_t padded_rows(int64_t rows) {
  int64_t b = (rows + kBatch - 1) / kBatch;
  return std::max<int64_t>(b, 1) * kBatch;
}

Columns::Columns(int64_t rows, int features)
    : rows_(rows),
      padded_(padded_rows(rows)),
      features_(features),
      buf_(static_cast<size_t>(padded_rows(rows) * std::max(features, 1))) {
  KILN_CHECK(rows >= 0 && features >= 0, "Columns needs rows >= 0 and features >= 0");
}

Columns Columns::from_rows(const float* x, int64_t rows, int features) {
  Columns c(rows, features);
  for (int64_t r = 0; r < rows; ++r)
    for (int f = 0; f < features; ++f) c.col(f)[r] = x[r * features + f];
  return c;
}

Columns Columns::rows_subset(const std::vector<int64_t>& idx) const {
  Columns c(static_cast<int64_t>(idx.size()), features_);
  for (int f = 0; f < features_; ++f)
    for (size_t i = 0; i < idx.size(); ++i) c.col(f)[i] = col(f)[idx[i]];
  return c;
}

}  // namespace kiln::symreg
