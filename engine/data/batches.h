// Mini-batches over a dataset for training and evaluation.
//
//   BatchIterator it(split.train, /*batch_size=*/32, /*shuffle=*/true, /*seed=*/1);
//   Tensor x, targets;
//   std::vector<int> labels;
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     it.start_epoch();                      // a new order each epoch
//     while (it.next(x, labels, targets)) {  // x: [B, ...]; the last batch may be smaller
//       ...
//     }
//   }
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "engine/data/dataset.h"

namespace kiln::data {

class BatchIterator {
 public:
  // Keeps a pointer to `d`, which must outlive the iterator. With shuffle, the order is reshuffled at
  // every start_epoch() from one std::mt19937_64 seeded here, so a run is reproducible from the seed.
  // InputError if batch_size < 1.
  BatchIterator(const Dataset& d, int64_t batch_size, bool shuffle, uint64_t seed);

  // Starts a pass over every sample (next() starts the first one by itself).
  void start_epoch();
  // The next batch of the epoch: x [B, ...], labels [B] (empty for regression), targets [B, T] (empty
  // for classification). Reuses the caller's buffers when their shape already fits. False at the end.
  bool next(Tensor& x, std::vector<int>& labels, Tensor& targets);
  int64_t batches_per_epoch() const;
  int64_t batch_size() const { return batch_size_; }

 private:
  const Dataset* d_;
  int64_t batch_size_;
  bool shuffle_;
  std::mt19937_64 rng_;
  std::vector<int64_t> order_;  // [N] sample order of the current epoch
  int64_t pos_ = 0;             // next position in order_
  bool started_ = false;
};

}  // namespace kiln::data
