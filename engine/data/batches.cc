#include "engine/data/batches.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "engine/check.h"
#include "engine/data/util.h"

namespace kiln::data {

BatchIterator::BatchIterator(const Dataset& d, int64_t batch_size, bool shuffle, uint64_t seed)
    : d_(&d), batch_size_(batch_size), shuffle_(shuffle), rng_(seed) {
  if (batch_size < 1) detail::fail("batch size must be at least 1, got " + std::to_string(batch_size));
  KILN_CHECK(d.labels.empty() || static_cast<int64_t>(d.labels.size()) == d.size(),
             "dataset " + d.source + " has " + std::to_string(d.labels.size()) + " labels for " +
                 std::to_string(d.size()) + " samples");
  KILN_CHECK(d.targets.empty() || d.targets.dim(0) == d.size(), "dataset " + d.source + " has targets " +
                                                                    shape_str(d.targets.shape()) + " for " +
                                                                    std::to_string(d.size()) + " samples");
  order_.resize(static_cast<size_t>(d.size()));
  std::iota(order_.begin(), order_.end(), 0);
}

void BatchIterator::start_epoch() {
  if (static_cast<int64_t>(order_.size()) != d_->size()) {  // the dataset changed size: start over
    order_.resize(static_cast<size_t>(d_->size()));
    std::iota(order_.begin(), order_.end(), 0);
  }
  if (shuffle_) std::shuffle(order_.begin(), order_.end(), rng_);
  pos_ = 0;
  started_ = true;
}

int64_t BatchIterator::batches_per_epoch() const { return (d_->size() + batch_size_ - 1) / batch_size_; }

namespace {
// Gives t the shape [rows, like[1:]], reallocating only when it differs.
void fit_shape(Tensor& t, int64_t rows, const Shape& like) {
  const Shape& s = t.shape();
  bool same = s.size() == like.size() && !s.empty() && s[0] == rows;
  for (size_t k = 1; same && k < s.size(); ++k) same = s[k] == like[k];
  if (same) return;
  Shape shape = like;
  shape[0] = rows;
  t = Tensor(shape);
}

// Copies rows order[0:rows] of src (rows of `row` floats) into dst. In two static halves on two threads,
// like the first layer's own split of the batch: each thread's rows arrive in its own core's cache, and the
// other thread no longer waits while one copies the whole batch.
void copy_rows(float* dst, const float* src, const int64_t* order, int64_t rows, int64_t row) {
  const size_t bytes = sizeof(float) * static_cast<size_t>(row);
#pragma omp parallel for schedule(static) if (rows * row >= 32768)
  for (int64_t i = 0; i < rows; ++i) std::memcpy(dst + i * row, src + order[i] * row, bytes);
}
}  // namespace

bool BatchIterator::next(Tensor& x, std::vector<int>& labels, Tensor& targets) {
  if (!started_) start_epoch();
  const int64_t n = d_->size();
  if (pos_ >= n) return false;
  const int64_t rows = std::min(batch_size_, n - pos_);
  const int64_t* idx = order_.data() + pos_;

  fit_shape(x, rows, d_->x.shape());
  copy_rows(x.data(), d_->x.data(), idx, rows, d_->x.size() / n);

  labels.resize(d_->labels.empty() ? 0 : static_cast<size_t>(rows));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = d_->labels[static_cast<size_t>(idx[i])];

  if (d_->targets.empty()) {
    if (!targets.empty() || targets.ndim() != 0) targets = Tensor();
  } else {
    fit_shape(targets, rows, d_->targets.shape());
    copy_rows(targets.data(), d_->targets.data(), idx, rows, d_->targets.size() / n);
  }
  pos_ += rows;
  return true;
}

}  // namespace kiln::data
