// Per-operator kernels over one batch of kBatch rows: the forward value and, next to it, the partial
// derivatives the reverse pass needs (style.md, principle 1). Plain loops over fixed-size float arrays
// with __restrict pointers: GCC turns the arithmetic ones into straight AVX2 code (-O3 -march=x86-64-v3),
// and the transcendental ones go through Eigen's vectorised packet math (sin, cos, exp, log, tanh, sqrt).
//
// Buffers are 32-byte aligned columns of kBatch floats. `a` is the first operand, `b` the second.
#pragma once
#include <Eigen/Core>
#include <cmath>

#include "symreg/lut.h"
#include "symreg/ops.h"

namespace kiln::symreg {

constexpr int kBatch = 128;  // rows per batch: 64 live columns of 512 B fit in L1/L2 together
// Data of at most this many rows run kernels of this width on their single batch: on the 20 rows of a
// benchmark problem a full batch would spend most of its sin, cos and exp on padding.
constexpr int kSmallBatch = 32;

namespace kernel {

// N: rows computed, kBatch or kSmallBatch (the columns always hold kBatch floats).
template <int N>
using Col = Eigen::Array<float, N, 1>;
template <int N>
Eigen::Map<Col<N>, Eigen::Aligned32> out(float* p) {
  return Eigen::Map<Col<N>, Eigen::Aligned32>(p);
}
template <int N>
Eigen::Map<const Col<N>, Eigen::Aligned32> in(const float* p) {
  return Eigen::Map<const Col<N>, Eigen::Aligned32>(p);
}

template <int N>
inline void lut(float* __restrict d, const float* __restrict a, const Lut& t) {
  const float lo = t.spec.lo, scale = t.scale, last = static_cast<float>(t.spec.size - 1);
  const float* tab = t.table.data();
  for (int j = 0; j < N; ++j) {
    float f = (a[j] - lo) * scale;
    f = f > 0 ? f : 0;  // NaN -> 0, as Lut::index
    f = f < last ? f : last;
    d[j] = tab[static_cast<int>(f)];
  }
}

// d = op(a, b) over one batch.
template <int N = kBatch>
inline void forward(Op op, float* __restrict d, const float* __restrict a, const float* __restrict b) {
  switch (op) {
    case Op::kAdd:
      for (int j = 0; j < N; ++j) d[j] = a[j] + b[j];
      return;
    case Op::kSub:
      for (int j = 0; j < N; ++j) d[j] = a[j] - b[j];
      return;
    case Op::kMul:
      for (int j = 0; j < N; ++j) d[j] = a[j] * b[j];
      return;
    case Op::kDiv:
      for (int j = 0; j < N; ++j) d[j] = a[j] / b[j];
      return;
    case Op::kAq:
      for (int j = 0; j < N; ++j) d[j] = a[j] / std::sqrt(1.0f + b[j] * b[j]);
      return;
    case Op::kPow:
      for (int j = 0; j < N; ++j) d[j] = std::pow(a[j], b[j]);
      return;
    case Op::kNeg:
      for (int j = 0; j < N; ++j) d[j] = -a[j];
      return;
    case Op::kInv:
      for (int j = 0; j < N; ++j) d[j] = 1.0f / a[j];
      return;
    case Op::kSquare:
      for (int j = 0; j < N; ++j) d[j] = a[j] * a[j];
      return;
    case Op::kCube:
      for (int j = 0; j < N; ++j) d[j] = a[j] * a[j] * a[j];
      return;
    case Op::kSqrt:
      for (int j = 0; j < N; ++j) d[j] = std::sqrt(std::fabs(a[j]));
      return;
    case Op::kAbs:
      for (int j = 0; j < N; ++j) d[j] = std::fabs(a[j]);
      return;
    case Op::kExp:
      out<N>(d) = in<N>(a).exp();
      return;
    case Op::kLog:
      out<N>(d) = in<N>(a).abs().log();
      return;
    case Op::kSin:
      out<N>(d) = in<N>(a).sin();
      return;
    case Op::kCos:
      out<N>(d) = in<N>(a).cos();
      return;
    case Op::kTan:
      out<N>(d) = in<N>(a).sin() / in<N>(a).cos();
      return;
    case Op::kTanh:
      out<N>(d) = in<N>(a).tanh();
      return;
    case Op::kGauss:
      out<N>(d) = (-in<N>(a).square()).exp();
      return;
    default:
      lut<N>(d, a, lut_table(op));
      return;
  }
}

// Reverse pass of one node: given its output y and the adjoint g of y, the adjoints of its operands,
// da = g * dy/da and db = g * dy/db (db only for binary ops). Table ops use the derivative of the exact
// function (a straight-through surrogate: the table itself is piecewise constant).
template <int N = kBatch>
inline void backward(Op op, float* __restrict da, float* __restrict db, const float* __restrict g,
                     const float* __restrict y, const float* __restrict a, const float* __restrict b) {
  switch (op) {
    case Op::kAdd:
      for (int j = 0; j < N; ++j) da[j] = g[j], db[j] = g[j];
      return;
    case Op::kSub:
      for (int j = 0; j < N; ++j) da[j] = g[j], db[j] = -g[j];
      return;
    case Op::kMul:
      for (int j = 0; j < N; ++j) da[j] = g[j] * b[j], db[j] = g[j] * a[j];
      return;
    case Op::kDiv:
      for (int j = 0; j < N; ++j) da[j] = g[j] / b[j], db[j] = -g[j] * y[j] / b[j];
      return;
    case Op::kAq:
      for (int j = 0; j < N; ++j) {
        float s = 1.0f + b[j] * b[j];
        da[j] = g[j] / std::sqrt(s), db[j] = -g[j] * y[j] * b[j] / s;
      }
      return;
    case Op::kPow:
      for (int j = 0; j < N; ++j) da[j] = g[j] * b[j] * y[j] / a[j], db[j] = g[j] * y[j] * std::log(a[j]);
      return;
    default:
      break;
  }
  switch (lut_base(op)) {
    case Op::kNeg:
      for (int j = 0; j < N; ++j) da[j] = -g[j];
      return;
    case Op::kInv:
      for (int j = 0; j < N; ++j) da[j] = -g[j] * y[j] * y[j];
      return;
    case Op::kSquare:
      for (int j = 0; j < N; ++j) da[j] = 2.0f * g[j] * a[j];
      return;
    case Op::kCube:
      for (int j = 0; j < N; ++j) da[j] = 3.0f * g[j] * a[j] * a[j];
      return;
    case Op::kSqrt:
      for (int j = 0; j < N; ++j) da[j] = g[j] * std::copysign(0.5f, a[j]) / std::sqrt(std::fabs(a[j]));
      return;
    case Op::kAbs:
      for (int j = 0; j < N; ++j) da[j] = std::copysign(g[j], a[j]) * (a[j] != 0);
      return;
    case Op::kExp:
      out<N>(da) = in<N>(g) * in<N>(a).exp();
      return;
    case Op::kLog:
      for (int j = 0; j < N; ++j) da[j] = g[j] / a[j];
      return;
    case Op::kSin:
      out<N>(da) = in<N>(g) * in<N>(a).cos();
      return;
    case Op::kCos:
      out<N>(da) = -in<N>(g) * in<N>(a).sin();
      return;
    case Op::kTan:
      out<N>(da) = in<N>(g) / in<N>(a).cos().square();
      return;
    case Op::kTanh:
      out<N>(da) = in<N>(g) * (1.0f - in<N>(a).tanh().square());
      return;
    case Op::kGauss:
      out<N>(da) = -2.0f * in<N>(g) * in<N>(a) * (-in<N>(a).square()).exp();
      return;
    default:
      return;
  }
}

}  // namespace kernel
}  // namespace kiln::symreg
