// A dataset in memory, and what training does with it before batching: subsets, a seeded
// train/validation/test split and per-feature standardisation.
//
//   CsvOptions opt;
//   opt.path = "jets.csv";
//   opt.label = "class";
//   Dataset d = load_csv(opt);
//   Split s = split(d, /*val=*/0.1, /*test=*/0.2, /*seed=*/42);
//   Standardizer st;
//   st.fit(s.train.x);                     // training split only
//   st.apply(s.train.x); st.apply(s.val.x); st.apply(s.test.x);
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace kiln::data {

// N samples. Classification fills `labels` (and `class_names`); regression fills `targets`.
struct Dataset {
  Tensor x;                 // [N, ...] float32 features (CSV: [N, F]; IDX: [N, rows, cols, 1] in [0, 1])
  std::vector<int> labels;  // [N] class index per sample (empty for regression)
  Tensor targets;           // [N, T] regression targets (empty for classification)
  std::vector<std::string> feature_names;  // CSV column names; empty for IDX and NPY
  std::vector<std::string>
      class_names;     // class index -> label text (sorted: ints numerically, strings lexically)
  std::string source;  // path(s), for messages

  int64_t size() const { return x.ndim() > 0 ? x.dim(0) : 0; }
  // class_names.size(), or 1 + the largest label when there are no names; 0 for regression.
  int num_classes() const;
  int64_t sample_size() const { return size() > 0 ? x.size() / size() : 0; }  // features per sample
};

// The samples at `idx` (in that order; repeats allowed). Names, class names and source are kept.
Dataset subset(const Dataset& d, const std::vector<int64_t>& idx);

struct Split {
  Dataset train, val, test;
};
// Shuffles the sample order with std::mt19937_64(seed), then takes ceil(test_fraction * N) samples for
// test, the next ceil(val_fraction * N) for validation (both fractions of the whole set), and the rest
// for training. Fractions must be in [0, 1) with a sum below 1 and leave at least one training sample;
// otherwise InputError. Deterministic for a seed.
Split split(const Dataset& d, double val_fraction, double test_fraction, uint64_t seed);

// Per-feature standardisation, x' = (x - mean) * scale, where a feature is one element of a sample
// (x viewed as [N, D]). scale = 1 / std (population std); a constant feature gets scale 1.
// Fit on the training split only; the parameters belong to the trained model.
struct Standardizer {
  std::vector<float> mean, scale;  // [D] each

  void fit(const Tensor& x);    // InputError if x has no samples
  void apply(Tensor& x) const;  // InputError on a feature-count mismatch
  bool empty() const { return mean.empty(); }
};

}  // namespace kiln::data
