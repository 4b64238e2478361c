#include "engine/tensor.h"

#include <malloc.h>

#include <algorithm>
#include <sstream>

#include "engine/check.h"

namespace kiln {

namespace {
// Training allocates and frees the same large buffers every step. By default glibc serves blocks over
// 128 KiB-32 MiB with mmap and returns freed memory to the kernel, so every step pays page faults to
// get it back (10-20% of a CNN's time). Keeping freed memory in the heap makes the next step reuse it.
[[maybe_unused]] const bool kHeapTuned = [] {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return true;
}();
}  // namespace

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  // A zero dimension anywhere means no elements, even if the dimensions before it overflow when multiplied.
  if (std::find(s.begin(), s.end(), int64_t{0}) != s.end()) return 0;
  int64_t n = 1;
  for (int64_t d : s)
    if (__builtin_mul_overflow(n, d, &n))
      throw ShapeError("shape " + shape_str(s) + " has more elements than fit in 64 bits");
  return n;
}

Tensor::Tensor(Shape shape, float fill) : shape_(std::move(shape)) {
  for (int64_t d : shape_) KILN_CHECK(d >= 0, "negative dimension in shape " + shape_str(shape_));
  data_.assign(static_cast<size_t>(shape_numel(shape_)), fill);
}

Tensor::Tensor(Shape shape, std::vector<float> data) : shape_(std::move(shape)), data_(data.begin(), data.end()) {
  KILN_CHECK(static_cast<int64_t>(data_.size()) == shape_numel(shape_),
             "tensor data has " + std::to_string(data_.size()) + " values but shape " + shape_str(shape_) +
                 " needs " + std::to_string(shape_numel(shape_)));
}

Tensor Tensor::uninitialized(Shape shape) {
  Tensor t;
  for (int64_t d : shape) KILN_CHECK(d >= 0, "negative dimension in shape " + shape_str(shape));
  t.data_.resize(static_cast<size_t>(shape_numel(shape)));
  t.shape_ = std::move(shape);
  return t;
}

int64_t Tensor::dim(int axis) const {
  int a = axis < 0 ? axis + ndim() : axis;
  KILN_CHECK(a >= 0 && a < ndim(), "axis " + std::to_string(axis) + " out of range for shape " + shape_str(shape_));
  return shape_[static_cast<size_t>(a)];
}

static int64_t flat_index(const Shape& shape, std::initializer_list<int64_t> idx) {
  KILN_CHECK(idx.size() == shape.size(), "index rank does not match shape " + shape_str(shape));
  int64_t flat = 0;
  size_t k = 0;
  for (int64_t i : idx) {
    KILN_CHECK(i >= 0 && i < shape[k], "index out of range for shape " + shape_str(shape));
    flat = flat * shape[k++] + i;
  }
  return flat;
}

float& Tensor::at(std::initializer_list<int64_t> idx) { return data_[static_cast<size_t>(flat_index(shape_, idx))]; }
float Tensor::at(std::initializer_list<int64_t> idx) const {
  return data_[static_cast<size_t>(flat_index(shape_, idx))];
}

static int64_t last_dim(const Shape& s) { return s.empty() ? 1 : s.back(); }

MatMap Tensor::matrix() {
  int64_t c = last_dim(shape_);
  return MatMap(data_.data(), c ? size() / c : 0, c);
}
ConstMatMap Tensor::matrix() const {
  int64_t c = last_dim(shape_);
  return ConstMatMap(data_.data(), c ? size() / c : 0, c);
}
MatMap Tensor::matrix(int64_t rows, int64_t cols) {
  KILN_CHECK(rows * cols == size(), "matrix view [" + std::to_string(rows) + ", " + std::to_string(cols) +
                                        "] of tensor " + shape_str(shape_));
  return MatMap(data_.data(), rows, cols);
}
ConstMatMap Tensor::matrix(int64_t rows, int64_t cols) const {
  KILN_CHECK(rows * cols == size(), "matrix view [" + std::to_string(rows) + ", " + std::to_string(cols) +
                                        "] of tensor " + shape_str(shape_));
  return ConstMatMap(data_.data(), rows, cols);
}

Shape resolve_shape(const Shape& shape, int64_t numel) {
  Shape out = shape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0) throw ShapeError("reshape to " + shape_str(shape) + ": more than one -1");
      infer = static_cast<int>(i);
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      throw ShapeError("cannot reshape " + std::to_string(numel) + " elements to " + shape_str(shape));
    out[static_cast<size_t>(infer)] = numel / known;
  } else if (known != numel) {
    throw ShapeError("cannot reshape " + std::to_string(numel) + " elements to " + shape_str(shape));
  }
  return out;
}

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t;
  t.shape_ = resolve_shape(shape, size());
  t.data_ = data_;
  return t;
}

void Tensor::fill(float v) { std::fill(data_.begin(), data_.end(), v); }

}  // namespace kiln
