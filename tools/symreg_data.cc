#include "tools/symreg_data.h"

#include <algorithm>

#include "engine/check.h"
#include "engine/data/loaders.h"
#include "engine/utf8.h"
#include "tools/symreg_teacher.h"

namespace kiln::symreg {

SearchData load_search_data(const Flags& f, Teacher* teacher) {
  SearchData out;
  data::CsvOptions co;
  co.path = f.data;
  co.header = !f.no_header;
  co.label = f.target;
  co.features = split_list(f.features);
  if (!f.weights.empty() && !co.features.empty()) co.features.push_back(f.weights);
  const bool distil = teacher != nullptr;
  co.regression = !f.classes && !distil;  // a teacher's test metric is AUC against the class labels
  data::Dataset& d = out.all;
  d = data::load_csv(co);
  if (d.size() == 0) throw InputError(f.data + ": no data rows");
  for (const auto& n : d.feature_names)
    require_utf8(n, f.data + ":1: column name");  // header names, into JSON and C
  for (const auto& n : d.class_names) require_utf8(n, f.data + ": class label");
  std::vector<std::string>& names = out.names;
  names = d.feature_names;
  std::vector<float> weights_all;
  if (!f.weights.empty()) {  // the weight column came in as a feature: take it out
    auto it = std::find(names.begin(), names.end(), f.weights);
    if (it == names.end()) throw InputError("--weights: no column '" + f.weights + "' in " + f.data);
    int wc = static_cast<int>(it - names.begin()), F = static_cast<int>(names.size());
    std::vector<float> x;
    for (int64_t r = 0; r < d.size(); ++r) {
      float w = d.x.data()[r * F + wc];
      if (!(w >= 0))
        throw InputError("--weights: column '" + f.weights + "' row " + std::to_string(r + 1) + " holds " +
                         std::to_string(w) + ", weights must be >= 0");
      weights_all.push_back(w);
      for (int c = 0; c < F; ++c)
        if (c != wc) x.push_back(d.x.data()[r * F + c]);
    }
    names.erase(it);
    d.x = Tensor({d.size(), F - 1}, x);
    d.feature_names = names;
  }
  if (names.empty()) throw InputError(f.data + ": no feature columns besides the target '" + f.target + "'");
  // The split shuffles rows; weights follow through an index column appended to x.
  {
    int F = static_cast<int>(names.size());
    std::vector<float> x;
    for (int64_t r = 0; r < d.size(); ++r) {
      for (int c = 0; c < F; ++c) x.push_back(d.x.data()[r * F + c]);
      x.push_back(static_cast<float>(r));
    }
    d.x = Tensor({d.size(), F + 1}, x);
  }
  // With a teacher the split is its run's (its seed and, unless --test-split is given, its test fraction): on
  // the file it was trained on the test rows are the ones it was tested on, never trained on.
  uint64_t split_seed = static_cast<uint64_t>(f.seed);
  double& test_split = out.test_split;
  test_split = f.test_split;
  if (distil) {
    load_teacher_rows(f, *teacher);
    if (teacher->rows.size() != d.size())  // the same file read twice
      throw InputError(f.data + ": read " + std::to_string(teacher->rows.size()) + " rows for the teacher, " +
                       std::to_string(d.size()) + " for the search");
    split_seed = teacher->ck.seed;
    if (!f.test_split_given) test_split = teacher->test_split;
    if (!(test_split >= 0 && test_split < 1))
      throw InputError("--teacher: " + f.teacher + ": its test_split " + number(test_split) +
                       " is not in [0, 1); give --test-split");
  }
  out.split = data::split(d, 0, test_split, split_seed);
  // The columns of the search, the rows' weights and their row numbers in the file (the appended column).
  auto strip = [&](const data::Dataset& s, std::vector<float>& w, std::vector<int64_t>& rows) {
    int F = static_cast<int>(names.size());
    Columns c(s.size(), F);
    for (int64_t r = 0; r < s.size(); ++r) {
      for (int k = 0; k < F; ++k) c.col(k)[r] = s.x.data()[r * (F + 1) + k];
      rows.push_back(static_cast<int64_t>(s.x.data()[r * (F + 1) + F]));
      if (!weights_all.empty()) w.push_back(weights_all[static_cast<size_t>(rows.back())]);
    }
    return c;
  };
  out.x_train = strip(out.split.train, out.w_train, out.train_rows);
  out.x_test = strip(out.test(), out.w_test, out.test_rows);
  return out;
}

Targets make_targets(const Flags& f, const SearchData& d, Teacher* teacher) {
  Targets fit;
  std::vector<Target>& targets = fit.targets;
  fit.w_fit = d.w_train;
  const data::Dataset& train_d = d.split.train;
  const data::Dataset& test_d = d.test();
  if (teacher) {
    teacher_targets(f, d, *teacher, fit);
  } else if (!f.classes) {
    Target t;
    t.name = f.target.empty() ? "target" : f.target;
    for (int64_t r = 0; r < train_d.size(); ++r) t.y_train.push_back(train_d.targets.data()[r]);
    for (int64_t r = 0; r < test_d.size(); ++r) t.y_test.push_back(test_d.targets.data()[r]);
    t.y_fit = t.y_train;
    targets.push_back(t);
  } else {
    int C = d.all.num_classes();
    if (C < 2)
      throw InputError(f.data + ": --classes needs at least 2 classes, the target '" + f.target + "' has " +
                       std::to_string(C));
    // Two classes: one expression, class 1 against class 0 (a binary logit); more: one per class.
    for (int c = (C == 2 ? 1 : 0); c < C; ++c) {
      Target t;
      t.name = "class " + d.all.class_names[static_cast<size_t>(c)];
      for (int l : train_d.labels) t.y_train.push_back(l == c ? 1.0f : -1.0f);
      for (int l : test_d.labels) t.y_test.push_back(l == c ? 1.0f : -1.0f);
      t.y_fit = t.y_train;
      targets.push_back(t);
    }
  }
  return fit;
}

}  // namespace kiln::symreg
