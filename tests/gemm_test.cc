// engine/gemm.h: products split across threads by fixed blocks of rows give, element for element, the bits of
// one Eigen product over all rows (the split changes who computes a row, not how its sums run), whatever the
// number of threads.
#include "engine/gemm.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "doctest/doctest.h"

using namespace kiln;

namespace {

MatrixRM random_matrix(int64_t r, int64_t c, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  MatrixRM m(r, c);
  for (int64_t j = 0; j < m.size(); ++j) m.data()[j] = nd(rng);
  return m;
}

bool same_bits(const MatrixRM& a, const MatrixRM& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.size())) == 0;
}

}  // namespace

TEST_CASE("gemm::rows equals one whole product bit for bit: split or not, 1 or 2 threads") {
  std::mt19937 rng(3);
  // Sizes around the split rules: dense batches (32 to 128 rows, split in two when m k n >= 2^20), the
  // convolutions' blocks of up to 1024 rows (equal and even in number: 4100 in five of 688 and a shorter
  // one, 20000 in twenty of 1000; 6145 keeps 2048-row blocks and a last single row), depths below and above
  // Eigen's depth blocking, odd widths.
  for (int64_t m : {32, 33, 40, 64, 81, 100, 127, 128, 129, 130, 200, 1000, 1025, 4100, 6145, 20000})
    for (int64_t k : {9, 144, 800, 1100})
      for (int64_t n : {1, 10, 64, 203}) {
        if (m * k * n > (int64_t{1} << 27)) continue;
        CAPTURE(m);
        CAPTURE(k);
        CAPTURE(n);
        MatrixRM a = random_matrix(m, k, rng), b = random_matrix(k, n, rng), bt = b.transpose();
        MatrixRM c0 = random_matrix(m, n, rng);
        MatrixRM whole = a * b, whole_acc = c0;
        whole_acc.noalias() += a * b;
        MatrixRM whole_t = a * bt.transpose();
        MatrixRM first[3];
        for (int threads : {1, 2}) {
          omp_set_num_threads(threads);
          MatrixRM c(m, n), ct(m, n), acc = c0;
          gemm::rows(c.data(), a.data(), b.data(), m, k, n, false);
          gemm::rows(ct.data(), a.data(), bt.data(), m, k, n, false, /*b_transposed=*/true);
          gemm::rows(acc.data(), a.data(), b.data(), m, k, n, true);
          if (threads == 1) {
            first[0] = c, first[1] = ct, first[2] = acc;
          } else {
            CHECK(same_bits(c, first[0]));
            CHECK(same_bits(ct, first[1]));
            CHECK(same_bits(acc, first[2]));
          }
          // One output column, or a last block of one row, is Eigen's matrix-vector kernel, whose sums
          // follow the 2048-row blocks: thread-count independent (above), but not the whole product's bits.
          if ((n == 1 && m > 2048) || (m > 2048 && m % 2048 == 1)) continue;
          CHECK(same_bits(c, whole));
          CHECK(same_bits(ct, whole_t));
          CHECK(same_bits(acc, whole_acc));
        }
      }
  omp_set_num_threads(1);
}

TEST_CASE("gemm::row_block: two threads' static halves get the same rows, up to one block") {
  // conv1's forward at batch 128 (86,528 rows), conv2's (15,488), the last batch of an epoch, odd sizes.
  for (int64_t m : {4100, 6000, 15488, 20000, 75712, 86528, 100001}) {
    CAPTURE(m);
    const int64_t block = gemm::row_block(m, 9, 16), tasks = (m + block - 1) / block;
    CHECK(block % 8 == 0);
    CHECK(block <= gemm::kTaskRows);
    CHECK(tasks % 2 == 0);
    const int64_t first = tasks / 2 * block;  // schedule(static): the first half of the tasks
    CHECK(std::abs(first - (m - first)) < block);
  }
  // Kept at 2048 rows: one output column, and a last block of a single row.
  CHECK(gemm::row_block(86528, 9, 1) == 2048);
  CHECK(gemm::row_block(6145, 9, 16) == 2048);
}

TEST_CASE("gemm::tn_sum: the same sum on 1 and 2 threads, and one product when it is one block") {
  std::mt19937 rng(4);
  // k 800 and 203 over 128 or 4096 rows: one block of rows whose product is split in two halves of C's rows
  // (a dense layer's weight gradient), at 400 and 104.
  for (int64_t m : {128, 4096, 9000, 15488})
    for (int64_t k : {9, 144, 203, 800})
      for (int64_t n : {16, 32, 64}) {
        CAPTURE(m);
        MatrixRM a = random_matrix(m, k, rng), g = random_matrix(m, n, rng);
        MatrixRM r1 = MatrixRM::Zero(k, n), r2 = MatrixRM::Zero(k, n);
        omp_set_num_threads(1);
        gemm::tn_sum(r1.data(), a.data(), g.data(), m, k, n);
        omp_set_num_threads(2);
        gemm::tn_sum(r2.data(), a.data(), g.data(), m, k, n);
        CHECK(same_bits(r1, r2));
        if (m <= 4096) {
          MatrixRM whole = a.transpose() * g;
          CHECK(same_bits(r1, whole));
        } else {  // blocks of 4096 rows, each one product (split in halves of C's rows past 16), in order
          MatrixRM sum = MatrixRM::Zero(k, n);
          for (int64_t r0 = 0; r0 < m; r0 += 4096) {
            const int64_t r = std::min<int64_t>(4096, m - r0);
            MatrixRM part = a.middleRows(r0, r).transpose() * g.middleRows(r0, r);
            sum += part;
          }
          CHECK(same_bits(r1, sum));
        }
      }
  omp_set_num_threads(1);
}

TEST_CASE("gemm::tn_sum_with runs its side task once, beside one block or many, with the same sum") {
  std::mt19937 rng(5);
  for (int64_t m : {1000, 9000})
    for (int threads : {1, 2}) {
      CAPTURE(m);
      CAPTURE(threads);
      omp_set_num_threads(threads);
      MatrixRM a = random_matrix(m, 9, rng), g = random_matrix(m, 16, rng);
      MatrixRM plain = MatrixRM::Zero(9, 16), with = MatrixRM::Zero(9, 16);
      gemm::tn_sum(plain.data(), a.data(), g.data(), m, 9, 16);
      int calls = 0;
      double side_sum = 0;
      gemm::tn_sum_with(with.data(), a.data(), g.data(), m, 9, 16, [&] {
        ++calls;
        for (int64_t r = 0; r < m; ++r) side_sum += g(r, 0);
      });
      CHECK(calls == 1);
      CHECK(same_bits(with, plain));
      CHECK(side_sum == doctest::Approx(g.col(0).cast<double>().sum()));
    }
  omp_set_num_threads(1);
}
