// Matrix products split across OpenMP threads by kiln itself. Eigen's own parallel GEMM is off
// (EIGEN_DONT_PARALLELIZE in .bazelrc): its threads wait for each other's packed blocks in busy loops, so on
// a shared 2-core machine a descheduled partner stalls every product for a whole time slice (2 threads ran
// 20-100x slower than 1 under load). Here each thread runs an independent single-threaded Eigen product on
// its own rows; the only synchronisation is the barrier at the end of the parallel loop.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/parallel.h"
#include "engine/tensor.h"

namespace kiln::gemm {

// Rows per task of rows(): enough work per product, enough tasks to balance. A product of fewer rows (a dense
// layer's batch) is split in two, at a multiple of 8, when it is large enough to pay for a second thread.
// Splitting rows keeps each element's sum: row-major C = A B is Eigen's column-major C^T = B^T A^T, whose
// columns (our rows) go through the kernel in panels of 4 with the same depth blocking (it depends on k
// only); tests/gemm_test checks it bit for bit. (Not where a block is one row or C one column: Eigen then
// takes its matrix-vector kernel, which groups the sums differently. A convolution with 2048 j + 1 rows has
// such a last block; it always had, so results are as before and still thread-count independent.)
// Past two blocks, the blocks are of equal size (a multiple of 8, the last one shorter), about kTaskRows
// rows, and even in number, so that two threads' static halves get the same rows: 42 blocks of 2048 rows
// and a short one (conv1's forward at batch 128) left one thread 8% more rows than the other, which waited
// for it at every product. About 1024 rows rather than 2048 give par::balanced_for twice the tasks to even
// out threads of unequal speed (conv2's forward had 8). Blocks of other sizes give the same bits (above),
// except in two cases kept at 2048 rows: one output column (the matrix-vector kernel groups its sums by
// block) and a last block of a single row (the same kernel).
constexpr int64_t kTaskRows = 1024;
inline int64_t row_block(int64_t m, int64_t k, int64_t n) {
  constexpr int64_t kBlock = 2048;
  if (m < 2 * kBlock && m >= 32 && n >= 8 && k >= 8 && m * k * n >= (int64_t{1} << 20))
    return ((m + 1) / 2 + 7) / 8 * 8;  // two blocks, the second at least 8 rows
  const int64_t tasks = (m + kBlock - 1) / kBlock;
  if (tasks < 2 || n == 1 || m % kBlock == 1) return kBlock;
  const int64_t even = ((m + kTaskRows - 1) / kTaskRows + 1) / 2 * 2;
  const int64_t block = ((m + even - 1) / even + 7) / 8 * 8;
  return m - (m - 1) / block * block > 1 ? block : kBlock;  // the last block's rows: more than one
}

// rows() with a prologue and an epilogue per block, in the block's own task: before(r0, r) fills rows
// [r0, r0 + r) of A, after(r0, r) post-processes those rows of C, each while the block is still in cache
// (a convolution builds its im2col rows and applies bias and relu this way). Same blocks, same products.
template <class Before, class After>
void rows_with(float* c, const float* a, const float* b, int64_t m, int64_t k, int64_t n, bool accumulate,
               bool b_transposed, Before&& before, After&& after) {
  const int64_t block = row_block(m, k, n);
  const int64_t tasks = (m + block - 1) / block;
  par::balanced_for(tasks, [&](int64_t t) {
    const int64_t r0 = t * block, r = std::min(block, m - r0);
    before(r0, r);
    MatMap cm(c + r0 * n, r, n);
    ConstMatMap am(a + r0 * k, r, k);
    if (b_transposed) {
      ConstMatMap bm(b, n, k);
      if (accumulate)
        cm.noalias() += am * bm.transpose();
      else
        cm.noalias() = am * bm.transpose();
    } else {
      ConstMatMap bm(b, k, n);
      if (accumulate)
        cm.noalias() += am * bm;
      else
        cm.noalias() = am * bm;
    }
    after(r0, r);
  });
}

// C [M, N] (+)= A [M, K] * B [K, N] (or B^T when b_transposed, B stored [N, K]), row-major. Rows of A and C
// are split into fixed blocks (row_block), one product per block, so the result does not depend on the
// thread count.
inline void rows(float* c, const float* a, const float* b, int64_t m, int64_t k, int64_t n, bool accumulate,
                 bool b_transposed = false) {
  auto none = [](int64_t, int64_t) {};
  rows_with(c, a, b, m, k, n, accumulate, b_transposed, none, none);
}

// C [K, N] += A^T G for A [M, K], G [M, N]: a sum over M rows. Fixed blocks of rows give partial products
// that are added in block order, so the result does not depend on the thread count; each thread starts on
// the blocks of the rows it had in the forward (par::balanced_for). side() runs on the first thread before
// its blocks: independent serial work, such as a bias gradient summed in row order, that the other threads
// make up for by taking over that thread's last blocks.
template <class Side>
void tn_sum_with(float* c, const float* a, const float* g, int64_t m, int64_t k, int64_t n, Side&& side) {
  const int64_t block = 4096;
  const int64_t tasks = std::max<int64_t>(1, (m + block - 1) / block);
  // C's rows split in two, at a multiple of 8, make two tasks of each block: for one block (a dense layer's
  // batch) when the product is large enough (a dense layer's weight gradient, 800 x 64 over 128 rows, ran on
  // one thread while the other waited), for several when C has 16 rows or more (conv2's 4 blocks were too
  // few to share out evenly). Each of C's rows is A's column times G over the same rows, in the same panels
  // of Eigen's kernel wherever the split falls on a multiple of 4: the bits of one product.
  const bool split = k >= 16 && (tasks > 1 || m * k * n >= (int64_t{1} << 20));
  const int64_t half = split ? ((k + 1) / 2 + 7) / 8 * 8 : k, halves = half < k ? 2 : 1;
  // One block adds into C directly; several write partial products, added in block order below.
  std::vector<MatrixRM> part(static_cast<size_t>(tasks > 1 ? tasks : 0), MatrixRM(k, n));
  par::balanced_for_with(tasks * halves, side, [&](int64_t u) {
    const int64_t t = u / halves, r0 = t * block, r = std::min(block, m - r0);
    const int64_t k0 = u % halves * half, kk = u % halves ? k - half : half;
    const Eigen::Map<const MatrixRM, 0, Eigen::OuterStride<>> at(a + r0 * k + k0, r, kk,
                                                                 Eigen::OuterStride<>(k));
    const ConstMatMap gt(g + r0 * n, r, n);
    if (tasks == 1)
      MatMap(c + k0 * n, kk, n).noalias() += at.transpose() * gt;
    else
      MatMap(part[static_cast<size_t>(t)].data() + k0 * n, kk, n).noalias() = at.transpose() * gt;
  });
  if (tasks == 1) return;
  MatMap cm(c, k, n);
  for (const MatrixRM& p : part) cm += p;
}

inline void tn_sum(float* c, const float* a, const float* g, int64_t m, int64_t k, int64_t n) {
  tn_sum_with(c, a, g, m, k, n, [] {});
}

}  // namespace kiln::gemm
