// The data of a search, column by column: F features of N rows in float32, each column padded with zeros
// to a multiple of kBatch rows and 32-byte aligned, so that the evaluator reads whole batches straight
// from the columns (a variable node costs nothing) and never handles a ragged tail.
//
//   Columns x(rows, features);
//   x.col(f)[r] = value;            // column f, row r
//   Columns sub = x.rows_subset(idx);
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace kiln::symreg {

// An aligned float buffer (32 bytes: one AVX2 register), zero-filled.
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(size_t n);
  float* data() { return p_.get(); }
  const float* data() const { return p_.get(); }
  size_t size() const { return n_; }
  float& operator[](size_t i) { return p_.get()[i]; }
  float operator[](size_t i) const { return p_.get()[i]; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> p_;
  size_t n_ = 0;
};

class Columns {
 public:
  Columns() = default;
  Columns(int64_t rows, int features);
  // Row-major [rows, features] values (a Dataset's x) into columns.
  static Columns from_rows(const float* x, int64_t rows, int features);

  int64_t rows() const { return rows_; }
  int64_t padded() const { return padded_; }  // rows rounded up to a multiple of kBatch (at least one batch)
  int features() const { return features_; }
  float* col(int f) { return buf_.data() + f * padded_; }
  const float* col(int f) const { return buf_.data() + f * padded_; }
  Columns rows_subset(const std::vector<int64_t>& idx) const;

 private:
  int64_t rows_ = 0, padded_ = 0;
  int features_ = 0;
  AlignedFloats buf_;
};

int64_t padded_rows(int64_t rows);

}  // namespace kiln::symreg
