// Tensor: float32, N-d, contiguous, row-major. A value type (copying copies the data); Eigen::Map views
// give the math without copies.
//
//   Tensor x({2, 3});             // zeros, shape [2, 3]
//   x.at({1, 2}) = 5.f;
//   x.matrix() *= 2.f;            // Eigen row-major view [2, 3]
#pragma once
#include <Eigen/Core>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

using Shape = std::vector<int64_t>;
using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<MatrixRM>;
using ConstMatMap = Eigen::Map<const MatrixRM>;
using VecMap = Eigen::Map<Eigen::VectorXf>;
using ConstVecMap = Eigen::Map<const Eigen::VectorXf>;

std::string shape_str(const Shape& s);  // "[2, 3]"
int64_t shape_numel(const Shape& s);

// 64-byte aligned storage: Eigen's vectorised kernels peel and order their sums by the data's alignment,
// so aligned buffers make every run take the same path (bit-for-bit reproducible results), and the
// loads are aligned for AVX-512.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::size_t kAlign = 64;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(std::size_t n) {
    std::size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, bytes ? bytes : kAlign);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) { std::free(p); }
  // resize() default-initialises (leaves floats unset): Tensor::uninitialized relies on it; every other
  // constructor fills explicitly.
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};
using FloatBuffer = std::vector<float, AlignedAllocator<float>>;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape, float fill = 0.f);
  Tensor(Shape shape, std::vector<float> data);  // data.size() must equal the shape's element count
  // Contents unspecified: for op outputs that are overwritten entirely (saves a memset per op).
  static Tensor uninitialized(Shape shape);

  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int axis) const;  // negative axes count from the end
  int64_t size() const { return static_cast<int64_t>(data_.size()); }
  bool empty() const { return data_.empty(); }

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::vector<float> storage() const { return std::vector<float>(data_.begin(), data_.end()); }  // a copy
  float& operator[](int64_t i) { return data_[static_cast<size_t>(i)]; }
  float operator[](int64_t i) const { return data_[static_cast<size_t>(i)]; }
  float& at(std::initializer_list<int64_t> idx);
  float at(std::initializer_list<int64_t> idx) const;

  // [rows, last dim] view (a 1-d tensor is one row); a 0-d tensor is [1, 1].
  MatMap matrix();
  ConstMatMap matrix() const;
  // [rows, cols] view with rows * cols == size().
  MatMap matrix(int64_t rows, int64_t cols);
  ConstMatMap matrix(int64_t rows, int64_t cols) const;
  VecMap vec() { return VecMap(data_.data(), size()); }
  ConstVecMap vec() const { return ConstVecMap(data_.data(), size()); }

  Tensor reshaped(Shape shape) const;  // same data, new shape; one dim may be -1
  void fill(float v);
  void zero() { fill(0.f); }

 private:
  Shape shape_;
  FloatBuffer data_;
};

// Resolves one -1 in `shape` against `numel`; throws on a mismatch naming both shapes.
Shape resolve_shape(const Shape& shape, int64_t numel);

}  // namespace kiln
