// Teacher-student distillation: the soft loss's value (T^2 * KL, computed by hand in double) and gradient,
// every bad `distillation:` key, what Distiller::prepare does to a split (teacher logits as targets; the
// teacher's scores, scaled and rounded onto a fixed-point grid, as regression targets; the teacher's own
// standardisation), and short training runs that show the loss is wired in (alpha = 0 is plain training,
// a student equal to its teacher does not move, the KL falls while the student learns its teacher).
#include "engine/train/distill.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/train/anomaly.h"
#include "engine/train/checkpoint.h"
#include "tests/gradcheck.h"
#include "tests/test_files.h"

using namespace kiln;
using kiln::testing::max_grad_error;
using kiln::testing::random_tensor;
using kiln::testing::TempDir;

namespace {

// softmax(z / T) of one row, in double.
std::vector<double> softmax_row(const float* z, int64_t c, double temperature) {
  double m = *std::max_element(z, z + c), sum = 0;
  std::vector<double> p(static_cast<size_t>(c));
  for (int64_t j = 0; j < c; ++j) sum += p[static_cast<size_t>(j)] = std::exp((z[j] - m) / temperature);
  for (double& v : p) v /= sum;
  return p;
}

// T^2 * mean over rows of KL(softmax(t / T) || softmax(z / T)), in double.
double soft_loss_by_hand(const Tensor& z, const Tensor& t, double temperature) {
  const int64_t b = z.dim(0), c = z.size() / b;
  double kl = 0;
  for (int64_t i = 0; i < b; ++i) {
    const auto p = softmax_row(t.data() + i * c, c, temperature),
               q = softmax_row(z.data() + i * c, c, temperature);
    for (size_t j = 0; j < p.size(); ++j) kl += p[j] * (std::log(p[j]) - std::log(q[j]));
  }
  return temperature * temperature * kl / static_cast<double>(b);
}

double value_of(const Var& v) { return v.value()[0]; }

train::DistillOptions parse(const std::string& yaml) {
  return train::parse_distillation(Config::parse(yaml, "test.yaml"));
}

// A model saved as a checkpoint (the teacher), with its standardiser.
std::string save_teacher(const TempDir& tmp, const std::string& name, nn::Model& m,
                         const data::Standardizer& st, const std::vector<std::string>& class_names = {}) {
  data::Dataset ref;
  ref.x = Tensor({1, m.input_shape()[0]});
  if (!class_names.empty()) ref.labels = {0}, ref.class_names = class_names;
  train::Checkpoint c = train::make_checkpoint(m, st, ref);
  const std::string p = tmp.path(name);
  train::save_checkpoint(c, p);
  return p;
}

data::Standardizer standardizer(std::vector<float> mean, std::vector<float> scale) {
  data::Standardizer s;
  s.mean = std::move(mean), s.scale = std::move(scale);
  return s;
}

// n samples of 3 features with labels 0, 1, 2 (class names a, b, c).
data::Dataset labelled(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  data::Dataset d;
  d.x = random_tensor({n, 3}, rng, -2.f, 2.f);
  for (int64_t i = 0; i < n; ++i) d.labels.push_back(static_cast<int>(i % 3));
  d.class_names = {"a", "b", "c"};
  return d;
}

std::vector<float> flat_params(nn::Model& m) {
  std::vector<float> out;
  for (nn::Parameter* p : m.parameters())
    out.insert(out.end(), p->var.value().data(), p->var.value().data() + p->var.size());
  return out;
}

double extra_of(const train::EpochRecord& r, const std::string& key) {
  for (const auto& [k, v] : r.extra)
    if (k == key) return v;
  FAIL("history has no '" << key << "'");
  return NAN;
}

const char* kLinear3 = "layers: [{type: dense, name: out, units: 3}]";

}  // namespace

// ---- soft_distillation_loss ------------------------------------------------------------------------

TEST_CASE("soft distillation loss: 0 when the student's logits equal the teacher's") {
  std::mt19937_64 rng(1);
  Tensor t = random_tensor({4, 5}, rng, -3.f, 3.f);
  for (double temp : {0.5, 1.0, 4.0, 20.0}) {
    INFO("T = ", temp);
    // Float rounding of the cross-entropy and entropy terms, scaled by T^2.
    CHECK(std::fabs(value_of(train::soft_distillation_loss(Var(t), t, temp))) <
          1e-5 * std::max(1.0, temp * temp));
  }
  // Shifting every logit of a row by the same amount changes no probability.
  Tensor shifted = t;
  for (int64_t i = 0; i < 5; ++i) shifted[i] += 2.5f;
  CHECK(std::fabs(value_of(train::soft_distillation_loss(Var(shifted), t, 2.0))) < 1e-5);
}

TEST_CASE("soft distillation loss: T^2 * KL(teacher || student), the batch mean, by hand in double") {
  const Tensor z({2, 3}, {1.0f, -0.5f, 2.0f, 0.3f, 0.3f, -1.2f});
  const Tensor t({2, 3}, {2.0f, 0.5f, -1.0f, -0.7f, 1.1f, 0.4f});
  for (double temp : {1.0, 2.0, 4.0}) {
    INFO("T = ", temp);
    const double want = soft_loss_by_hand(z, t, temp);
    CHECK(want > 0);
    CHECK(value_of(train::soft_distillation_loss(Var(z), t, temp)) == doctest::Approx(want).epsilon(1e-4));
  }
  // A worked number: T = 1, row 1 alone, p = softmax(2, 0.5, -1), q = softmax(1, -0.5, 2).
  {
    const double ep[] = {std::exp(2.0), std::exp(0.5), std::exp(-1.0)},
                 eq[] = {std::exp(1.0), std::exp(-0.5), std::exp(2.0)};
    const double sp = ep[0] + ep[1] + ep[2], sq = eq[0] + eq[1] + eq[2];
    double kl = 0;
    for (int j = 0; j < 3; ++j) kl += ep[j] / sp * std::log((ep[j] / sp) / (eq[j] / sq));
    CHECK(value_of(train::soft_distillation_loss(Var(Tensor({1, 3}, {1.0f, -0.5f, 2.0f})),
                                                 Tensor({1, 3}, {2.0f, 0.5f, -1.0f}), 1.0)) ==
          doctest::Approx(kl).epsilon(1e-5));
  }
  // The batch mean: the same rows twice give the same value.
  Tensor z2({4, 3}), t2({4, 3});
  for (int64_t i = 0; i < 12; ++i) z2[i] = z[i % 6], t2[i] = t[i % 6];
  CHECK(value_of(train::soft_distillation_loss(Var(z2), t2, 2.0)) ==
        doctest::Approx(value_of(train::soft_distillation_loss(Var(z), t, 2.0))).epsilon(1e-5));
  // KL is not symmetric: swapping teacher and student changes the value.
  CHECK(value_of(train::soft_distillation_loss(Var(t), z, 1.0)) ==
        doctest::Approx(soft_loss_by_hand(t, z, 1.0)).epsilon(1e-5));
  CHECK(soft_loss_by_hand(t, z, 1.0) != doctest::Approx(soft_loss_by_hand(z, t, 1.0)));
}

TEST_CASE("soft distillation loss: gradient T * (q - p) / B, checked by finite differences") {
  std::mt19937_64 rng(2);
  const Tensor t = random_tensor({3, 4}, rng, -2.f, 2.f);
  const Tensor z0 = random_tensor({3, 4}, rng, -2.f, 2.f);
  for (double temp : {1.0, 3.0}) {
    INFO("T = ", temp);
    CHECK(max_grad_error(
              [&](const std::vector<Var>& v) { return train::soft_distillation_loss(v[0], t, temp); }, {z0},
              1e-2f) < 2e-3);
    // The closed form: d/dz_ij [T^2 / B * sum p log(p / q)] = T / B * (q_ij - p_ij).
    Var z(z0, true);
    backward(train::soft_distillation_loss(z, t, temp));
    REQUIRE(!z.grad().empty());
    for (int64_t i = 0; i < 3; ++i) {
      const auto p = softmax_row(t.data() + i * 4, 4, temp), q = softmax_row(z0.data() + i * 4, 4, temp);
      for (int64_t j = 0; j < 4; ++j)
        CHECK(z.grad()[i * 4 + j] ==
              doctest::Approx(temp * (q[static_cast<size_t>(j)] - p[static_cast<size_t>(j)]) / 3)
                  .epsilon(1e-4));
    }
  }
}

TEST_CASE("soft distillation loss: for a large T the gradient is (z - mean z - (t - mean t)) / (C B)") {
  // softmax(z / T) ~ (1 + (z - mean z) / T) / C, so T (q - p) / B -> ((z - z̄) - (t - t̄)) / (C B): the T^2
  // keeps the gradient's scale independent of T (Hinton et al.).
  const Tensor z({2, 3}, {1.0f, -0.5f, 2.0f, 0.3f, 0.3f, -1.2f});
  const Tensor t({2, 3}, {2.0f, 0.5f, -1.0f, -0.7f, 1.1f, 0.4f});
  Var v(z, true);
  backward(train::soft_distillation_loss(v, t, 100.0));
  for (int64_t i = 0; i < 2; ++i) {
    double mz = 0, mt = 0;
    for (int64_t j = 0; j < 3; ++j) mz += z[i * 3 + j] / 3.0, mt += t[i * 3 + j] / 3.0;
    for (int64_t j = 0; j < 3; ++j)
      CHECK(v.grad()[i * 3 + j] ==
            doctest::Approx(((z[i * 3 + j] - mz) - (t[i * 3 + j] - mt)) / 6.0).epsilon(0.03));
  }
}

TEST_CASE("soft distillation loss: a teacher of another size is a ShapeError") {
  CHECK_THROWS_AS(train::soft_distillation_loss(Var(Tensor({2, 3})), Tensor({2, 4}), 2.0), ShapeError);
}

// ---- parse_distillation ---------------------------------------------------------------------------

TEST_CASE("parse_distillation: defaults, and every key read") {
  CHECK_FALSE(train::parse_distillation(Config()).enabled());
  auto d = parse("teacher: runs/t/model.ckpt\n");
  CHECK(d.enabled());
  CHECK(d.teacher == "runs/t/model.ckpt");
  CHECK(d.mode == "soft");
  CHECK(d.alpha == 0.5);
  CHECK(d.temperature == 4.0);
  CHECK(d.where.rfind("test.yaml", 0) == 0);

  auto s = parse("teacher: t.ckpt\nmode: soft\nalpha: 0.9\ntemperature: 2.5\n");
  CHECK(s.alpha == 0.9);
  CHECK(s.temperature == 2.5);
  CHECK(parse("teacher: t.ckpt\nalpha: 0\n").alpha == 0.0);
  CHECK(parse("teacher: t.ckpt\nalpha: 1\n").alpha == 1.0);

  auto r = parse(
      "teacher: t.ckpt\nmode: regression\nscore: latent\nlatent_layer: z\nscore_scale: 32\n"
      "score_precision: {bits: 16, integer: 8}\noutlier_exposure: {fraction: 0.5, noise: 2}\n");
  CHECK(r.mode == "regression");
  CHECK(r.score == "latent");
  CHECK(r.latent_layer == "z");
  CHECK(r.score_scale == 32.0);
  CHECK(r.score_bits == 16);
  CHECK(r.score_integer_bits == 8);
  CHECK(r.outlier_fraction == 0.5);
  CHECK(r.outlier_noise == 2.0);
  auto r0 = parse("teacher: t.ckpt\nmode: regression\n");
  CHECK(r0.score == "log_mse");
  CHECK(r0.score_bits == 0);
  CHECK(r0.outlier_fraction == 0.0);

  auto f = parse(
      "teacher: t.ckpt\nmode: features\nfeatures: [{student: h1, teacher: t1}, {student: h2, teacher: "
      "t2}]\n");
  REQUIRE(f.features.size() == 2);
  CHECK(f.features[0] == std::pair<std::string, std::string>{"h1", "t1"});
  CHECK(f.features[1] == std::pair<std::string, std::string>{"h2", "t2"});
  CHECK(parse("teacher: t.ckpt\nmode: colearn\n").mode == "colearn");
}

TEST_CASE("parse_distillation: each bad key is an InputError naming it, at its line") {
  CHECK_INPUT_ERROR(parse("mode: soft\n"), "test.yaml", "'teacher'");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: sharp\n"), "test.yaml:2:", "mode", "'sharp'",
                    "soft, regression");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nalpha: 1.5\n"), "test.yaml:2:", "alpha", "1.5");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nalpha: -0.1\n"), "test.yaml:2:", "alpha");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nalpha: .nan\n"), "test.yaml:2:", "alpha");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\ntemperature: 0\n"), "test.yaml:2:", "temperature");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\ntemperature: -2\n"), "test.yaml:2:", "temperature");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nalpah: 0.5\n"), "test.yaml", "'alpah'", "alpha");
  // Keys of another mode.
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: soft\nscore: mse\n"), "test.yaml:3:", "'score'",
                    "regression");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nscore_scale: 4\n"), "test.yaml:2:", "'score_scale'",
                    "regression");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: colearn\noutlier_exposure: {fraction: 1}\n"),
                    "test.yaml:3:", "'outlier_exposure'", "regression");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: soft\nfeatures: [{student: a, teacher: b}]\n"),
                    "test.yaml:3:", "'features'", "mode features");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\nfeatures: [{student: a, teacher: b}]\n"),
                    "test.yaml:3:", "'features'");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: features\n"), "test.yaml", "features");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: features\nfeatures: [{student: a}]\n"), "test.yaml",
                    "'teacher'");
  // Regression's own keys.
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\nscore: entropy\n"), "test.yaml:3:", "score",
                    "'entropy'");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\nscore: latent\n"), "test.yaml", "latent_layer");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\nscore_scale: 0\n"),
                    "test.yaml:3:", "score_scale");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\nscore_scale: -1\n"),
                    "test.yaml:3:", "score_scale");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\nscore_precision: {bits: 1, integer: 1}\n"),
                    "test.yaml:3:", "bits");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\nscore_precision: {bits: 8, integer: 9}\n"),
                    "test.yaml:3:", "integer");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\nscore_precision: {bits: 8}\n"),
                    "test.yaml:3:", "'integer'");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\noutlier_exposure: {noise: 0}\n"),
                    "test.yaml:3:", "noise");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\noutlier_exposure: {fraction: -1}\n"),
                    "test.yaml:3:", "fraction");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\noutlier_exposure: {fration: 1}\n"),
                    "test.yaml:3:", "'fration'");
  CHECK_INPUT_ERROR(parse("teacher: t.ckpt\nmode: regression\noutlier_exposure: {shift: -2}\n"),
                    "test.yaml:3:", "shift");
  CHECK(parse("teacher: t.ckpt\nmode: regression\noutlier_exposure: {shift: 2}\n").outlier_noise == 0.0);
}

TEST_CASE("Distiller regression: outlier exposure by shift moves training images by at most `shift` pixels") {
  TempDir tmp;
  // A teacher on 5 x 5 x 1 images whose "score" is its single output (any function would do).
  auto t = nn::Model::from_yaml("layers: [{type: flatten}, {type: dense, name: s, units: 1}]", {5, 5, 1}, 3);
  data::Dataset ref;
  ref.x = Tensor({1, 5, 5, 1});
  train::Checkpoint c = train::make_checkpoint(*t, data::Standardizer(), ref);
  train::save_checkpoint(c, tmp.path("t.ckpt"));
  train::DistillOptions o =
      parse("teacher: x\nmode: regression\nscore: output\noutlier_exposure: {fraction: 2, shift: 2}\n");
  o.teacher = tmp.path("t.ckpt");
  train::Distiller d(o, data::Standardizer(), 5);
  data::Split s;
  std::mt19937_64 rng(4);
  s.train.x = random_tensor({6, 5, 5, 1}, rng, 0.5f, 1.f);  // no zeros: a zero marks a pixel shifted in
  d.prepare(s, train::TrainOptions());
  REQUIRE(s.train.size() == 18);
  int moved = 0;
  for (int64_t k = 6; k < 18; ++k) {
    const float* e = s.train.x.data() + k * 25;
    bool found = false;  // some training image and some (dy, dx) in [-2, 2] give this copy exactly
    for (int64_t i = 0; i < 6 && !found; ++i)
      for (int dy = -2; dy <= 2 && !found; ++dy)
        for (int dx = -2; dx <= 2 && !found; ++dx) {
          bool same = true;
          for (int y = 0; y < 5 && same; ++y)
            for (int x = 0; x < 5 && same; ++x) {
              const int sy = y - dy, sx = x - dx;
              const float want =
                  sy >= 0 && sy < 5 && sx >= 0 && sx < 5 ? s.train.x[i * 25 + sy * 5 + sx] : 0.f;
              same = e[y * 5 + x] == want;
            }
          if (same) found = true, moved += dy != 0 || dx != 0;
        }
    CHECK(found);
  }
  CHECK(moved >= 8);  // 24 of the 25 shifts move the image
  // Standardised images cannot be shifted: a moved pixel would be read with another pixel's scaling.
  data::Split st_split;
  st_split.train.x = random_tensor({6, 5, 5, 1}, rng, 0.5f, 1.f);
  CHECK_THROWS_WITH_AS(
      train::Distiller(o, standardizer(std::vector<float>(25, 0.5f), std::vector<float>(25, 2.f)), 5)
          .prepare(st_split, train::TrainOptions()),
      doctest::Contains("standardize: false"), InputError);
  // Samples that are not images cannot be shifted.
  data::Split flat;
  flat.train = labelled(6, 1);
  train::DistillOptions o2 = o;
  auto lin = nn::Model::from_yaml("layers: [{type: dense, units: 1}]", {3}, 1);
  o2.teacher = save_teacher(tmp, "lin.ckpt", *lin, data::Standardizer());
  CHECK_THROWS_WITH_AS(train::Distiller(o2, data::Standardizer(), 1).prepare(flat, train::TrainOptions()),
                       doctest::Contains("shift moves images"), InputError);
}

// ---- Distiller: the teacher from a checkpoint, and what prepare() does to the split -------------------

TEST_CASE("Distiller: a missing teacher checkpoint is an InputError naming the file") {
  TempDir tmp;
  train::DistillOptions o;
  o.teacher = tmp.path("no_such_teacher.ckpt");
  CHECK_INPUT_ERROR(train::Distiller(o, data::Standardizer(), 1), "no_such_teacher.ckpt");
}

TEST_CASE("Distiller: teacher_input undoes the student's standardisation and applies the teacher's") {
  TempDir tmp;
  auto teacher = nn::Model::from_yaml(kLinear3, {3}, 5);
  const auto ts = standardizer({1.f, -2.f, 0.5f}, {0.5f, 2.f, 4.f});
  const auto ss = standardizer({-1.f, 3.f, 0.f}, {0.25f, 1.f, 2.f});
  train::DistillOptions o;
  o.teacher = save_teacher(tmp, "t.ckpt", *teacher, ts, {"a", "b", "c"});
  train::Distiller d(o, ss, 1);
  std::mt19937_64 rng(3);
  const Tensor x = random_tensor({4, 3}, rng, -2.f, 2.f);
  const Tensor got = d.teacher_input(x);
  REQUIRE(got.shape() == x.shape());
  for (int64_t i = 0; i < x.size(); ++i) {
    const size_t j = static_cast<size_t>(i % 3);
    const double raw = x[i] / ss.scale[j] + ss.mean[j];
    CHECK(got[i] == doctest::Approx((raw - ts.mean[j]) * ts.scale[j]).epsilon(1e-5));
  }
  // Neither standardised: unchanged. Only the student: raw values. Only the teacher: its standardisation.
  train::DistillOptions o2 = o;
  o2.teacher = save_teacher(tmp, "t_raw.ckpt", *teacher, data::Standardizer(), {"a", "b", "c"});
  const Tensor same = train::Distiller(o2, data::Standardizer(), 1).teacher_input(x);
  for (int64_t i = 0; i < x.size(); ++i) CHECK(same[i] == x[i]);
  const Tensor raw = train::Distiller(o2, ss, 1).teacher_input(x);
  for (int64_t i = 0; i < x.size(); ++i)
    CHECK(raw[i] ==
          doctest::Approx(x[i] / ss.scale[static_cast<size_t>(i % 3)] + ss.mean[static_cast<size_t>(i % 3)]));
  const Tensor std_only = train::Distiller(o, data::Standardizer(), 1).teacher_input(x);
  for (int64_t i = 0; i < x.size(); ++i)
    CHECK(std_only[i] == doctest::Approx((x[i] - ts.mean[static_cast<size_t>(i % 3)]) *
                                         ts.scale[static_cast<size_t>(i % 3)]));
}

TEST_CASE("Distiller soft: the training targets are the teacher's logits; labels kept; checks sizes") {
  TempDir tmp;
  auto teacher = nn::Model::from_yaml(kLinear3, {3}, 5);
  const auto ts = standardizer({0.5f, -1.f, 0.f}, {2.f, 1.f, 0.5f});
  train::DistillOptions o;
  o.teacher = save_teacher(tmp, "t.ckpt", *teacher, ts, {"a", "b", "c"});
  train::Distiller d(o, data::Standardizer(), 1);
  data::Split s;
  s.train = labelled(10, 1), s.val = labelled(4, 2), s.test = labelled(4, 3);
  const std::vector<int> labels = s.train.labels;
  d.prepare(s, train::TrainOptions());
  REQUIRE(s.train.targets.shape() == Shape{10, 3});
  CHECK(s.train.labels == labels);
  CHECK(s.val.targets.empty());
  CHECK(s.test.targets.empty());
  // The teacher (the original object, not the checkpoint's copy) on its own standardisation of x.
  Tensor xt = s.train.x;
  for (int64_t i = 0; i < xt.size(); ++i) {
    const size_t j = static_cast<size_t>(i % 3);
    xt[i] = (xt[i] - ts.mean[j]) * ts.scale[j];
  }
  nn::Context ctx;
  const Tensor want = teacher->forward(Var(xt), ctx).value();
  for (int64_t i = 0; i < want.size(); ++i)
    CHECK(s.train.targets[i] == doctest::Approx(want[i]).epsilon(1e-5));

  // A teacher with 4 outputs for 3 classes.
  auto wide = nn::Model::from_yaml("layers: [{type: dense, units: 4}]", {3}, 5);
  train::DistillOptions o4 = o;
  o4.teacher = save_teacher(tmp, "t4.ckpt", *wide, ts);  // no class names: the output count is checked
  data::Split s4;
  s4.train = labelled(6, 1);
  CHECK_INPUT_ERROR(train::Distiller(o4, data::Standardizer(), 1).prepare(s4, train::TrainOptions()),
                    "t4.ckpt", "4 outputs", "3 classes");
  // Named classes must be the same, in the same order.
  o4.teacher = save_teacher(tmp, "t4n.ckpt", *wide, ts, {"a", "b", "c", "d"});
  CHECK_INPUT_ERROR(train::Distiller(o4, data::Standardizer(), 1).prepare(s4, train::TrainOptions()),
                    "t4n.ckpt", "(a, b, c, d)", "(a, b, c)");
  auto same = nn::Model::from_yaml("layers: [{type: dense, units: 3}]", {3}, 5);
  o4.teacher = save_teacher(tmp, "t3.ckpt", *same, ts, {"b", "a", "c"});
  CHECK_INPUT_ERROR(train::Distiller(o4, data::Standardizer(), 1).prepare(s4, train::TrainOptions()),
                    "t3.ckpt", "(b, a, c)");
  // Data of another width than the teacher's input.
  data::Split s5;
  s5.train.x = Tensor({6, 5});
  s5.train.labels = {0, 1, 2, 0, 1, 2};
  CHECK_INPUT_ERROR(train::Distiller(o, data::Standardizer(), 1).prepare(s5, train::TrainOptions()), "t.ckpt",
                    "[3]", "[5]");
  // Soft distillation needs labels.
  data::Split s6;
  s6.train.x = Tensor({6, 3});
  s6.train.targets = Tensor({6, 1});
  CHECK_INPUT_ERROR(train::Distiller(o, data::Standardizer(), 1).prepare(s6, train::TrainOptions()),
                    "labels");
}

TEST_CASE("Distiller regression: every split's targets are the teacher's scores, scaled and rounded") {
  TempDir tmp;
  auto ae = nn::Model::from_yaml(
      "layers: [{type: dense, name: enc, units: 2, activation: tanh}, {type: dense, name: dec, units: 3}]",
      {3}, 9);
  const auto ts = standardizer({0.5f, -1.f, 0.f}, {2.f, 1.f, 0.5f});
  train::DistillOptions o = parse(
      "teacher: x\nmode: regression\nscore: mse\nscore_scale: 2\nscore_precision: {bits: 6, integer: 3}\n");
  o.teacher = save_teacher(tmp, "ae.ckpt", *ae, ts);
  train::Distiller d(o, data::Standardizer(), 1);
  data::Split s;
  s.train = labelled(40, 1), s.val = labelled(8, 2), s.test = labelled(12, 3);
  d.prepare(s, train::TrainOptions());
  // ap_fixed<6, 3>: steps of 1/8 in [-4, 4 - 1/8], rounded to the nearest step, saturated.
  const double step = 0.125, lo = -4, hi = 3.875;
  int saturated = 0, inside = 0;
  for (data::Dataset* part : {&s.train, &s.val, &s.test}) {
    CHECK(part->labels.empty());
    REQUIRE(part->targets.shape() == Shape{part->size(), 1});
    Tensor xt = part->x;
    for (int64_t i = 0; i < xt.size(); ++i) {
      const size_t j = static_cast<size_t>(i % 3);
      xt[i] = (xt[i] - ts.mean[j]) * ts.scale[j];
    }
    nn::Context ctx;
    const Tensor rec = ae->forward(Var(xt), ctx).value();
    for (int64_t i = 0; i < part->size(); ++i) {
      double err = 0;
      for (int64_t j = 0; j < 3; ++j)
        err += std::pow(static_cast<double>(rec[i * 3 + j]) - xt[i * 3 + j], 2) / 3;
      const double scaled = 2 * err, target = part->targets[i];
      INFO("sample ", i, ": mse ", err, " -> target ", target);
      CHECK(target >= lo);
      CHECK(target <= hi);
      CHECK(std::fabs(target / step - std::round(target / step)) < 1e-6);  // on the grid
      if (scaled > hi) {
        CHECK(target == hi);
        ++saturated;
      } else {
        CHECK(std::fabs(target - scaled) <= step / 2 + 1e-6);
        ++inside;
      }
    }
  }
  MESSAGE(inside << " targets inside the range, " << saturated << " saturated");
  CHECK(inside > 10);
  // The test split's targets as kept for the report.
  REQUIRE(d.test_targets().size() == 12);
  for (size_t i = 0; i < 12; ++i)
    CHECK(d.test_targets()[i] == doctest::Approx(s.test.targets[static_cast<int64_t>(i)]));
}

TEST_CASE(
    "Distiller regression: unrounded targets equal anomaly_scores; outlier exposure adds scored copies") {
  TempDir tmp;
  auto ae = nn::Model::from_yaml(
      "layers: [{type: dense, name: enc, units: 2, activation: tanh}, {type: dense, name: dec, units: 3}]",
      {3}, 9);
  train::DistillOptions o = parse(
      "teacher: x\nmode: regression\nscore: log_mse\nscore_scale: 2\noutlier_exposure: {fraction: 0.5, "
      "noise: 3}\n");
  o.teacher = save_teacher(tmp, "ae.ckpt", *ae, data::Standardizer());
  train::Distiller d(o, data::Standardizer(), 1);
  data::Split s;
  s.train = labelled(20, 1), s.test = labelled(6, 3);
  const Tensor x0 = s.train.x;
  d.prepare(s, train::TrainOptions());
  REQUIRE(s.train.size() == 30);  // 20 + round(0.5 * 20) noisy copies
  REQUIRE(s.train.targets.shape() == Shape{30, 1});
  CHECK(s.train.labels.empty());
  for (int64_t i = 0; i < x0.size(); ++i) CHECK(s.train.x[i] == x0[i]);  // the originals first, unchanged
  const auto scores = train::anomaly_scores(*ae, s.train.x, "log_mse", "");
  for (int64_t i = 0; i < 30; ++i)
    CHECK(s.train.targets[i] == doctest::Approx(2 * scores[static_cast<size_t>(i)]).epsilon(1e-5));
  // The copies are noisy versions of training samples: noise 3 makes them score as more anomalous on average.
  double orig = 0, noisy = 0;
  for (int64_t i = 0; i < 20; ++i) orig += scores[static_cast<size_t>(i)] / 20;
  for (int64_t i = 20; i < 30; ++i) noisy += scores[static_cast<size_t>(i)] / 10;
  CHECK(noisy > orig);
  // A score the teacher cannot give: its output is not a reconstruction.
  auto cls = nn::Model::from_yaml("layers: [{type: dense, units: 2}]", {3}, 9);
  train::DistillOptions oc = o;
  oc.teacher = save_teacher(tmp, "cls.ckpt", *cls, data::Standardizer());
  data::Split s2;
  s2.train = labelled(6, 1);
  CHECK_THROWS_AS(train::Distiller(oc, data::Standardizer(), 1).prepare(s2, train::TrainOptions()),
                  std::exception);
}

// ---- Distiller in training -----------------------------------------------------------------------------

namespace {

struct Run {
  std::unique_ptr<nn::Model> student;
  std::vector<train::EpochRecord> history;
  std::shared_ptr<train::Distiller> distiller;
};

// Trains a student (by default linear 3 -> 3, seed student_seed) for `epochs` on 60 labelled samples,
// distilling from the teacher in `o` when it is set.
Run train_student(train::DistillOptions o, uint64_t student_seed, int epochs,
                  const std::string& student_yaml = kLinear3, const std::string& optimizer = "adam") {
  train::TrainOptions to;
  to.epochs = epochs;
  to.batch_size = 15;  // four equal batches: the epoch's mean loss is the mean of the steps'
  to.optimizer.type = optimizer;
  to.optimizer.learning_rate = optimizer == "sgd" ? 0.5f : 0.05f;
  to.seed = 3;
  data::Split s;
  s.train = labelled(60, 4);
  Run r;
  r.student = nn::Model::from_yaml(student_yaml, {3}, student_seed);
  train::Trainer tr(*r.student, to);
  if (o.enabled()) {
    r.distiller = std::make_shared<train::Distiller>(o, data::Standardizer(), to.seed);
    r.distiller->prepare(s, to);
    r.distiller->attach(tr, *r.student, to, r.distiller);
  }
  tr.fit(s.train, s.val, nullptr, nullptr);
  r.history = tr.history();
  return r;
}

}  // namespace

TEST_CASE("Distiller soft in training: alpha 0 is plain training; a student equal to its teacher stays put") {
  TempDir tmp;
  auto teacher = nn::Model::from_yaml(kLinear3, {3}, 11);
  train::DistillOptions o;
  o.teacher = save_teacher(tmp, "t.ckpt", *teacher, data::Standardizer(), {"a", "b", "c"});
  o.temperature = 2;

  // alpha = 0: the same weights as training without distillation, step for step.
  o.alpha = 0;
  Run plain = train_student(train::DistillOptions(), 21, 2), zero = train_student(o, 21, 2);
  CHECK(flat_params(*zero.student) == flat_params(*plain.student));
  CHECK(zero.history.back().train_loss == doctest::Approx(plain.history.back().train_loss));
  CHECK(extra_of(zero.history.back(), "kd_kl") > 0);  // still measured

  // alpha = 1 and the student starts as the teacher: the soft loss is 0 with a zero gradient (up to
  // rounding: plain SGD, which does not rescale a tiny gradient as Adam would), the labels have no weight,
  // so nothing moves.
  o.alpha = 1;
  Run same = train_student(o, 11, 2, kLinear3, "sgd");
  const auto moved = flat_params(*same.student), start = flat_params(*teacher);
  REQUIRE(moved.size() == start.size());
  for (size_t i = 0; i < start.size(); ++i) CHECK(moved[i] == doctest::Approx(start[i]).epsilon(1e-5));
  CHECK(std::fabs(extra_of(same.history.back(), "kd_kl")) < 1e-5);
  CHECK(std::fabs(same.history.back().train_loss) < 1e-5);
}

TEST_CASE("Distiller soft in training: the student learns its teacher (the KL falls)") {
  TempDir tmp;
  auto teacher = nn::Model::from_yaml(kLinear3, {3}, 11);
  train::DistillOptions o;
  o.teacher = save_teacher(tmp, "t.ckpt", *teacher, data::Standardizer(), {"a", "b", "c"});
  o.alpha = 1, o.temperature = 1;
  Run r = train_student(o, 22, 12);
  REQUIRE(r.history.size() == 12);
  const double first = extra_of(r.history.front(), "kd_kl"), last = extra_of(r.history.back(), "kd_kl");
  MESSAGE("kd_kl " << first << " -> " << last);
  CHECK(first > 0.05);
  CHECK(last < 0.2 * first);
  // With alpha 1 the reported training loss is the soft loss itself.
  CHECK(r.history.back().train_loss == doctest::Approx(last).epsilon(1e-3));
}

TEST_CASE("Distiller features and colearn in training: their stats, adapters and the teacher's steps") {
  TempDir tmp;
  auto teacher = nn::Model::from_yaml(
      "layers: [{type: dense, name: th, units: 2, activation: tanh}, {type: dense, name: tout, units: 3}]",
      {3}, 12);
  const std::string path = save_teacher(tmp, "t.ckpt", *teacher, data::Standardizer(), {"a", "b", "c"});
  const std::string student_yaml =
      "layers: [{type: dense, name: h, units: 4, activation: relu}, {type: dense, name: out, units: 3}]";

  train::DistillOptions f =
      parse("teacher: x\nmode: features\nalpha: 1\nfeatures: [{student: h, teacher: th}]\n");
  f.teacher = path;
  Run rf = train_student(f, 23, 10, student_yaml);
  const double first = extra_of(rf.history.front(), "feature_mse"),
               last = extra_of(rf.history.back(), "feature_mse");
  MESSAGE("feature_mse " << first << " -> " << last);
  CHECK(last < first);
  // A layer the student does not have.
  train::DistillOptions bad = parse("teacher: x\nmode: features\nfeatures: [{student: nope, teacher: th}]\n");
  bad.teacher = path;
  CHECK_INPUT_ERROR(train_student(bad, 23, 1, student_yaml), "'nope'", "h, out");

  train::DistillOptions c = parse("teacher: x\nmode: colearn\nalpha: 0.5\n");
  c.teacher = path;
  Run rc = train_student(c, 23, 3, student_yaml);
  REQUIRE(rc.distiller);
  CHECK(extra_of(rc.history.back(), "teacher_loss") > 0);
  CHECK(extra_of(rc.history.back(), "kd_kl") >= 0);
  // The teacher trained alongside: its weights moved from the checkpoint's.
  CHECK(flat_params(rc.distiller->teacher()) != flat_params(*teacher));
}

// ---- The trainer hooks distillation uses, and the mae loss of regression students -----------------------

TEST_CASE("Trainer::set_task_loss replaces the training loss only; set_capture fills ctx.captured") {
  auto m = nn::Model::from_yaml(
      "layers: [{type: dense, name: h, units: 4, activation: relu}, {type: dense, name: out, units: 3}]", {3},
      5);
  train::TrainOptions to;
  to.epochs = 1;
  to.batch_size = 10;
  to.optimizer.learning_rate = 0.01f;
  data::Dataset train = labelled(30, 1), val = labelled(9, 2);
  train::Trainer tr(*m, to);
  int calls = 0;
  double loss_sum = 0, lr_seen = 0;
  tr.set_capture({"h"});
  tr.set_task_loss([&](const Var& out, const Tensor& x, const std::vector<int>& labels, const Tensor& targets,
                       nn::Context& ctx) -> Var {
    ++calls;
    CHECK(x.dim(0) == 10);
    CHECK(labels.size() == 10);
    CHECK(targets.empty());
    REQUIRE(ctx.captured.count("h"));
    CHECK(ctx.captured.at("h").shape() == Shape{10, 4});
    CHECK(ctx.captured.count("out") == 0);
    lr_seen = tr.current_lr();
    Var l = mean_all(mul(out, out));  // any differentiable function of the outputs
    loss_sum += l.value()[0];
    return l;
  });
  tr.fit(train, val, nullptr, nullptr);
  CHECK(calls == 3);
  CHECK(lr_seen == doctest::Approx(0.01));
  // The epoch's training loss is the replaced one; validation keeps the configured loss (cross-entropy).
  CHECK(tr.history().back().train_loss == doctest::Approx(loss_sum / 3).epsilon(1e-5));
  const auto ev = train::evaluate(*m, val, to);
  CHECK(tr.history().back().val_loss == doctest::Approx(ev.loss).epsilon(1e-5));
}

TEST_CASE("compute_loss mae: the mean absolute difference, gradient sign / N") {
  train::TrainOptions o;
  o.loss = "mae";
  const Tensor out0({2, 2}, {1.f, -2.f, 0.5f, 3.f}), t({2, 2}, {0.f, 1.f, 0.5f, 5.f});
  Var out(out0, true);
  Var l = train::compute_loss(o, out, {}, t);
  CHECK(l.value()[0] == doctest::Approx((1 + 3 + 0 + 2) / 4.0));
  backward(l);
  CHECK(out.grad()[0] == doctest::Approx(0.25));
  CHECK(out.grad()[1] == doctest::Approx(-0.25));
  CHECK(out.grad()[3] == doctest::Approx(-0.25));
  // Targets [N] for outputs [N, 1] (a regression student's score) are the same values.
  CHECK(train::compute_loss(o, Var(Tensor({3, 1}, {1.f, 2.f, 3.f})), {}, Tensor({3}, {2.f, 2.f, 0.f}))
            .value()[0] == doctest::Approx(4.0 / 3));
  CHECK_THROWS_AS(train::compute_loss(o, Var(Tensor({2, 2})), {}, Tensor({2, 3})), ShapeError);
  // parse_training accepts it and lists it among the valid losses.
  CHECK(train::parse_training(Config::parse("loss: mae\n", "test.yaml")).loss == "mae");
  CHECK_INPUT_ERROR(train::parse_training(Config::parse("loss: maee\n", "test.yaml")),
                    "test.yaml:1:", "'maee'", "mae");
}
