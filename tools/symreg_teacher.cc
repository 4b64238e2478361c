#include "tools/symreg_teacher.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <sstream>

#include "engine/check.h"
#include "engine/config.h"
#include "engine/data/loaders.h"

namespace kiln::symreg {
namespace {

// The network's outputs for raw rows x [n, F] (standardised with the checkpoint's standardiser first).
Tensor teacher_outputs(Teacher& t, Tensor xs) {
  if (!t.ck.standardizer.empty()) t.ck.standardizer.apply(xs);
  return t.model->predict(xs, "", 4096);  // inference: dropout off, batch norm on its running statistics
}

// The teacher's score for class c: its one-vs-rest logit log(p_c / (1 - p_c)) = z_c - log sum_{j != c} exp
// z_j, which is z_1 - z_0 for two softmax outputs and the output itself for one (a sigmoid's logit, class 1).
// A monotone function of p_c, so it ranks the rows (its AUC) exactly as the network does; unlike p_c it does
// not saturate, so a formula fitted to it by MSE learns the network's ordering of confident rows too.
double teacher_score(const float* z, int outputs, int c) {
  if (outputs == 1) return z[0];
  double m = -INFINITY;
  for (int j = 0; j < outputs; ++j)
    if (j != c) m = std::max(m, double(z[j]));
  double s = 0;
  for (int j = 0; j < outputs; ++j)
    if (j != c) s += std::exp(z[j] - m);
  return z[c] - (m + std::log(s));
}

// What the search fits for class c: the score, the probability sigmoid(score), or the network's hard
// decision +-1 (for the classification losses).
float teacher_label(double score, const std::string& kind) {
  if (kind == "probability") return static_cast<float>(1 / (1 + std::exp(-score)));
  if (kind == "label") return score > 0 ? 1.0f : -1.0f;
  return static_cast<float>(score);
}

}  // namespace

Teacher load_teacher(const Flags& f) {
  Teacher t;
  t.ck = train::load_checkpoint(f.teacher);  // errors name the file: missing, truncated, corrupt, foreign
  const std::string& p = f.teacher;
  if (t.ck.task != "classification")
    throw InputError(
        "--teacher: " + p + " is a " + t.ck.task +
        " model; --teacher needs a classifier (its outputs become the labels, the test metric is AUC)");
  if (t.ck.feature_names.empty() ||
      t.ck.input_shape != Shape{static_cast<int64_t>(t.ck.feature_names.size())})
    throw InputError("--teacher: " + p + " takes inputs of shape " + shape_str(t.ck.input_shape) +
                     ", not a row of named CSV features (was it trained on CSV data?)");
  const int C = static_cast<int>(t.ck.class_names.size());
  if (C < 2)
    throw InputError("--teacher: " + p + " has " + std::to_string(C) + " classes; it needs at least 2");
  if (!t.ck.config_yaml.empty()) {
    try {  // the data section of the run it was trained by: its test split, to test on rows it never saw
      Config data = Config::parse(t.ck.config_yaml, p + " (run config)").child("data");
      t.test_split = data.get<double>("test_split", t.test_split);
      t.max_samples = data.get<int64_t>("max_samples", 0);
      t.data_path = data.get<std::string>("path", "");
    } catch (const std::exception&) {
      // The stored config is informational; without it the split falls back to the defaults.
    }
  }
  try {
    t.model = train::restore_model(t.ck);
  } catch (const InputError& e) {
    throw InputError("--teacher: " + std::string(e.what()) +
                     " (symreg reads float teachers; a compressed run's checkpoint is not supported)");
  }
  const int64_t outs = shape_numel(t.model->output_shape());
  if (!(outs == C || (outs == 1 && C == 2)))
    throw InputError("--teacher: " + p + " gives " + std::to_string(outs) + " outputs for " +
                     std::to_string(C) + " classes");
  t.outputs = static_cast<int>(outs);
  return t;
}

void load_teacher_rows(const Flags& f, Teacher& t) {
  const std::string& p = f.teacher;
  // Its feature columns, by name (with --no-header the names are col0, col1, ...: column indices).
  data::CsvOptions co;
  co.path = f.data;
  co.header = !f.no_header;
  co.label = f.target;
  for (const std::string& n : t.ck.feature_names)
    co.features.push_back(!co.header && n.rfind("col", 0) == 0 ? n.substr(3) : n);
  try {
    t.rows = data::load_csv(co);
  } catch (const InputError& e) {
    throw InputError("--teacher " + p + " reads the columns it was trained on: " + e.what());
  }
  for (const std::string& n : t.rows.class_names) {
    auto it = std::find(t.ck.class_names.begin(), t.ck.class_names.end(), n);
    if (it == t.ck.class_names.end()) {
      throw InputError(f.data + ": class '" + n + "' of the target '" + f.target +
                       "' is not one of the teacher's (" + join(t.ck.class_names) + ")");
    }
    t.class_of_label.push_back(static_cast<int>(it - t.ck.class_names.begin()));
  }
}

void teacher_targets(const Flags& f, const SearchData& d, Teacher& teacher, Targets& fit) {
  const Columns& x_train = d.x_train;
  const std::vector<std::string>& names = d.names;
  const std::vector<int64_t>& train_rows = d.train_rows;
  const train::Checkpoint& ck = teacher.ck;
  const int C = static_cast<int>(ck.class_names.size()), Ft = static_cast<int>(ck.feature_names.size());
  const Tensor z = teacher_outputs(teacher, teacher.rows.x);
  const int O = teacher.outputs;
  // Inputs sampled around the training rows: a random training row plus Gaussian noise of --teacher-noise
  // times each feature's std (over the training rows), the same noise for a column the search and the
  // teacher both read; labelled by the teacher.
  const int64_t n = x_train.rows(), S = f.teacher_samples;
  std::vector<float> xs_teacher;
  if (S > 0) {
    const int F = static_cast<int>(names.size());
    auto stdev = [n](const std::function<float(int64_t)>& v) {
      double m = 0, q = 0;
      for (int64_t r = 0; r < n; ++r) m += v(r);
      m /= static_cast<double>(n);
      for (int64_t r = 0; r < n; ++r) q += (v(r) - m) * (v(r) - m);
      return std::sqrt(q / static_cast<double>(n));
    };
    std::vector<double> sd(static_cast<size_t>(F)), sd_t(static_cast<size_t>(Ft));
    std::vector<int> shared(static_cast<size_t>(Ft),
                            -1);  // teacher column -> the search's column of that name
    for (int k = 0; k < F; ++k) sd[k] = stdev([&](int64_t r) { return x_train.col(k)[r]; });
    for (int k = 0; k < Ft; ++k) {
      sd_t[k] = stdev([&](int64_t r) { return teacher.rows.x.data()[train_rows[r] * Ft + k]; });
      auto it = std::find(names.begin(), names.end(), teacher.rows.feature_names[static_cast<size_t>(k)]);
      if (it != names.end()) shared[k] = static_cast<int>(it - names.begin());
    }
    Columns& x_sampled = fit.x_sampled;
    x_sampled = Columns(n + S, F);
    for (int k = 0; k < F; ++k) std::copy_n(x_train.col(k), n, x_sampled.col(k));
    xs_teacher.resize(static_cast<size_t>(S * Ft));
    std::mt19937_64 rng(static_cast<uint64_t>(f.seed) ^ 0x7eac4e55a3b1ULL);
    std::uniform_int_distribution<int64_t> pick(0, n - 1);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> noise(static_cast<size_t>(F));
    for (int64_t i = 0; i < S; ++i) {
      const int64_t r = pick(rng);
      for (int k = 0; k < F; ++k) {
        noise[k] = normal(rng) * f.teacher_noise * sd[k];
        x_sampled.col(k)[n + i] = static_cast<float>(x_train.col(k)[r] + noise[k]);
      }
      for (int k = 0; k < Ft; ++k) {
        const double e = shared[k] >= 0 ? noise[shared[k]] : normal(rng) * f.teacher_noise * sd_t[k];
        xs_teacher[i * Ft + k] = static_cast<float>(teacher.rows.x.data()[train_rows[r] * Ft + k] + e);
      }
      if (!d.w_train.empty()) fit.w_fit.push_back(d.w_train[r]);
    }
    fit.sampled = true;
  }
  const Tensor zs = S > 0 ? teacher_outputs(teacher, Tensor({S, Ft}, xs_teacher)) : Tensor();
  // Two classes: one output, the second class against the first (as --classes); more: one per class.
  for (int c = (C == 2 ? 1 : 0); c < C; ++c) {
    Target t;
    const std::string& cn = ck.class_names[static_cast<size_t>(c)];
    t.name = "class " + cn;
    if (f.teacher_target == "label")
      t.fitted_to = "teacher decisions +-1";
    else if (f.teacher_target == "probability")
      t.fitted_to = "teacher probability p_" + cn;
    else
      t.fitted_to = O == 1   ? "teacher logit"
                    : O == 2 ? "teacher score z_" + cn + " - z_" + ck.class_names[0]
                             : "teacher score z_" + cn + " - logsumexp(other z)";
    auto truth = [&](int64_t row) {
      return teacher.class_of_label[static_cast<size_t>(teacher.rows.labels[static_cast<size_t>(row)])] == c
                 ? 1.0f
                 : -1.0f;
    };
    for (int64_t row : train_rows) {
      const double sc = teacher_score(z.data() + row * O, O, c);
      t.y_fit.push_back(teacher_label(sc, f.teacher_target));
      t.y_train.push_back(truth(row)), t.teacher_train.push_back(static_cast<float>(sc));
    }
    for (int64_t i = 0; i < S; ++i)
      t.y_fit.push_back(teacher_label(teacher_score(zs.data() + i * O, O, c), f.teacher_target));
    for (int64_t row : d.test_rows) {
      t.y_test.push_back(truth(row));
      t.teacher_test.push_back(static_cast<float>(teacher_score(z.data() + row * O, O, c)));
    }
    fit.targets.push_back(t);
  }
}

std::string teacher_summary(const Flags& f, const Teacher& teacher, const std::vector<Target>& targets,
                            double test_split) {
  const train::Checkpoint& ck = teacher.ck;
  std::ostringstream os;
  os << "teacher: " << f.teacher << " (" << ck.feature_names.size() << " features, " << teacher.outputs
     << (teacher.outputs == 1 ? " output" : " outputs") << ", classes " << join(ck.class_names)
     << "); labels: " << targets[0].fitted_to << (targets.size() > 1 ? " (per class)" : "")
     << "; test rows: its split (seed " << ck.seed << ", " << number(test_split) << ")\n";
  return os.str();
}

std::string teacher_notes(const Flags& f, const Teacher& teacher, double test_split) {
  // Cases where the test rows may hold rows the teacher trained on (its AUC then flatters it).
  auto base = [](const std::string& p) { return p.substr(p.find_last_of('/') + 1); };
  std::string notes;
  if (teacher.max_samples > 0)
    notes += "note: the teacher was trained on a subset (max_samples " + std::to_string(teacher.max_samples) +
             "): the test rows may include rows it trained on\n";
  if (test_split > teacher.test_split)
    notes += "note: --test-split " + number(test_split) + " is above the teacher's " +
             number(teacher.test_split) + ": the test rows include rows it trained on\n";
  if (!teacher.data_path.empty() && base(teacher.data_path) != base(f.data))
    notes += "note: the teacher was trained on " + teacher.data_path +
             ": if that is another file, its test AUC here is on rows it may have seen\n";
  return notes;
}

}  // namespace kiln::symreg
