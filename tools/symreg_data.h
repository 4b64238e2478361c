// `kiln symreg`'s data: the CSV file read into the search's columns (the --weights column taken out, the rows
// split into train and test, each row keeping its row number in the file so that its weight and the
// teacher's outputs for it follow it through the shuffle), and the targets of the searches, one per output:
// the regression target, one class against the rest, or a teacher's scores (symreg_teacher.h).
//
//   SearchData d = load_search_data(f, distil ? &teacher : nullptr);
//   Targets fit = make_targets(f, d, distil ? &teacher : nullptr);
//   Problem pb{&fit.x_fit(d), fit.targets[k].y_fit, fit.w_fit, loss};
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "symreg/columns.h"
#include "tools/symreg_flags.h"

namespace kiln::symreg {

struct Teacher;  // symreg_teacher.h

struct SearchData {
  data::Dataset all;        // every row; x: [rows, F + 1], the features then the row's index in the file
  data::Split split;        // of `all`, with the teacher's seed under --teacher
  double test_split = 0.2;  // the fraction held out: --test-split, or the teacher's
  std::vector<std::string> names;  // the search's features (F)
  Columns x_train, x_test;
  std::vector<float> w_train, w_test;          // the rows' --weights (empty without)
  std::vector<int64_t> train_rows, test_rows;  // the rows' numbers in the file (0: the first data row)
  // The test rows, or the training rows when --test-split 0 leaves none.
  const data::Dataset& test() const { return split.test.size() ? split.test : split.train; }
};

// Reads --data (and, with a teacher, its own feature columns of the same file; load_teacher first) and
// splits it. InputError naming the file, column or row on bad data.
SearchData load_search_data(const Flags& f, Teacher* teacher);

// y_fit: the labels of the search (the training rows, then any sampled inputs); y_train, y_test: what the
// metrics compare with (the same labels, or with a teacher the true +-1 labels); teacher_*: its scores.
struct Target {
  std::string name;
  std::vector<float> y_train, y_test, y_fit, teacher_train, teacher_test;
  std::string fitted_to;
};

struct Targets {
  std::vector<Target> targets;
  bool sampled = false;  // --teacher-samples: x_sampled holds the training rows, then the sampled inputs
  Columns x_sampled;
  std::vector<float> w_fit;  // the weights of the rows the search fits (empty without --weights)
  // The rows the search fits.
  const Columns& x_fit(const SearchData& d) const { return sampled ? x_sampled : d.x_train; }
};

// The targets of the searches: the regression target, one per class with --classes (one for two classes:
// class 1 against class 0), or the teacher's (teacher_targets).
Targets make_targets(const Flags& f, const SearchData& d, Teacher* teacher);

}  // namespace kiln::symreg
