// HGQ integration: the EBOPs example of quantization.md (Dense 2 -> 3: 78), gradients of EBOPs to the bit
// widths, attachment and config errors, beta schedules, calibration of WRAP activations, and a short HGQ
// training run that lowers EBOPs while keeping accuracy.
#include "compress/hgq.h"

#include <cstring>
#include <random>

#include "engine/train/trainer.h"
#include "tests/gradcheck.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::compress;

namespace {
HgqOptions parse(const std::string& yaml) {
  return parse_quantization(Config::parse(yaml, "q.yaml", "quantization"));
}
}  // namespace

TEST_CASE("EBOPs of Dense 2 -> 3 with 4-bit inputs, 3-bit weights, 2-bit biases is 78") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 3}]", {2}, 1);
  // k + i + f: inputs 1 + 0 + 3 = 4, weights 1 + 0 + 2 = 3, biases 1 + 0 + 1 = 2.
  HgqOptions o = parse(R"(
default_fractional_bits: 2
default_data_fractional_bits: 3
layer_specific: {d: {bias: {fractional_bits: 1}}}
)");
  QuantizedModel qm(*m, o);
  REQUIRE(qm.layers().size() == 1);
  CHECK(qm.ebops_value() == doctest::Approx(78.0));
  CHECK(qm.uniform_ebops(8) == doctest::Approx(6 * 64 + 3 * 8));
  CHECK(qm.mean_bits(true) == doctest::Approx(4.0));
  CHECK(qm.mean_bits(false) == doctest::Approx((6 * 3 + 3 * 2) / 9.0));
  // d EBOPs / d f_weight[j, n] = b_in[j] = 4 (straight through the rounding of f).
  Var e = qm.total_ebops();
  backward(e);
  auto params = m->parameters();
  nn::Parameter* fw = nullptr;
  for (auto* p : params)
    if (p->name == "d.weight_q.f") fw = p;
  REQUIRE(fw != nullptr);
  for (int64_t j = 0; j < fw->var.size(); ++j) CHECK(fw->var.grad()[j] == doctest::Approx(4.f));
}

TEST_CASE("EBOPs of an unfolded BatchNorm: sum b_in * b_scale + mean(b_bias) * size") {
  // [2, 3] input (2 positions, 3 channels); inputs 1 + 0 + 3 = 4 bits, scales 1 + 0 + 2 = 3, shifts 1 + 0 + 1
  // = 2.
  auto m = nn::Model::from_yaml("layers: [{type: batch_norm, name: bn}]", {2, 3}, 1);
  QuantizedModel qm(*m, parse("default_fractional_bits: 2\ndefault_data_fractional_bits: 3\n"
                              "layer_specific: {bn: {bias: {fractional_bits: 1}}}\n"));
  REQUIRE(qm.layers().size() == 1);
  const LayerQuant& l = qm.layers()[0];
  REQUIRE(l.weight != nullptr);
  CHECK(l.weight->shape() == Shape{3});
  CHECK(qm.ebops_value() == doctest::Approx(6 * 4 * 3 + 2 * 6));  // 84
  CHECK(qm.uniform_ebops(8) == doctest::Approx(6 * 64 + 6 * 8));
  // Per-channel scale widths 3, 1, 0: each position multiplies its input by its channel's scale.
  Tensor& f = const_cast<Tensor&>(l.weight->f());
  f[0] = 2, f[1] = 0, f[2] = -1;
  CHECK(qm.ebops_value() == doctest::Approx(2 * 4 * (3 + 1 + 0) + 2 * 6));  // 44
}

TEST_CASE("EBOPs of a residual add: per element the wider input's bits, times 0.65 (HGQ2)") {
  auto m = nn::Model::from_yaml(
      "layers: [{type: dense, name: d, units: 3}, "
      "{type: residual, name: r, layers: [{type: dense, name: e, units: 3}]}]",
      {2}, 1);
  QuantizedModel qm(*m, parse("default_fractional_bits: 2\ndefault_data_fractional_bits: 3\n"));
  REQUIRE(qm.layers().size() == 3);  // d, r.e, then the add (at the end of the block)
  const LayerQuant& add = qm.layers()[2];
  REQUIRE(add.layer == m->layers()[1]);
  REQUIRE(add.input2 != nullptr);
  CHECK(add.weight == nullptr);
  CHECK(qm.uniform_ebops(8) == doctest::Approx(6 * 64 + 3 * 8 + 3 * 8 * 0.65 + 9 * 64 + 3 * 8));
  // Block input bits 4, 2, 1 (f = 3, 1, 0); body output bits 2, 3, 0 (f = 1, 2, -1): max 4 + 3 + 1 = 8.
  Tensor &fa = const_cast<Tensor&>(add.input->f()), &fb = const_cast<Tensor&>(add.input2->f());
  fa[0] = 3, fa[1] = 1, fa[2] = 0;
  fb[0] = 1, fb[1] = 2, fb[2] = -1;
  {
    NoGradGuard ng;
    CHECK(qm.ebops(add).value()[0] == doctest::Approx(8 * 0.65));
  }
  // The gradient goes to the wider input of each element.
  backward(qm.ebops(add));
  nn::Parameter *ga = nullptr, *gb = nullptr;
  for (auto* p : m->parameters()) {
    if (p->name == "r.input_q.f") ga = p;
    if (p->name == "r.input2_q.f") gb = p;
  }
  REQUIRE(ga != nullptr);
  REQUIRE(gb != nullptr);
  CHECK(ga->var.grad()[0] == doctest::Approx(0.65f));
  CHECK(gb->var.grad()[0] == doctest::Approx(0.f));
  CHECK(ga->var.grad()[1] == doctest::Approx(0.f));
  CHECK(gb->var.grad()[1] == doctest::Approx(0.65f));
  // A block fed by a ReLU whose body ends in a ReLU: both inputs of the add are unsigned.
  auto u = nn::Model::from_yaml(
      "layers: [{type: dense, units: 3, activation: relu}, "
      "{type: residual, name: r, layers: [{type: dense, units: 3, activation: relu}]}, "
      "{type: residual, name: s, layers: [{type: dense, units: 3}]}]",
      {2}, 1);
  QuantizedModel qu(*u, parse("default_data_fractional_bits: 3\n"));
  REQUIRE(qu.layers().size() == 5);
  CHECK(qu.layers()[2].layer->name() == "r");
  CHECK(qu.layers()[2].input->k() == 0);
  CHECK(qu.layers()[2].input2->k() == 0);
  CHECK(qu.layers()[3].input->k() == 0);   // s.dense_1: after r (a sum of non-negatives)
  CHECK(qu.layers()[4].input->k() == 0);   // s's block input
  CHECK(qu.layers()[4].input2->k() == 1);  // s's body ends linear
}

TEST_CASE("EBOPs of a convolution count every multiply it performs") {
  // conv2d 3x3, 1 -> 2 filters, valid, on 4x4: 2x2 positions * 9 taps * 2 filters = 72 multiplies.
  auto m = nn::Model::from_yaml("layers: [{type: conv2d, filters: 2, kernel_size: 3, use_bias: false}]",
                                {4, 4, 1}, 1);
  HgqOptions o =
      parse("default_fractional_bits: 1\ndefault_data_fractional_bits: 2\n");  // 2-bit weights, 3-bit inputs
  QuantizedModel qm(*m, o);
  CHECK(qm.ebops_value() == doctest::Approx(72 * 2 * 3));
  // Same padding: border positions have fewer taps (4 corners x 4, 8 edges x 6, 4 inside x 9 = 100).
  auto ms = nn::Model::from_yaml(
      "layers: [{type: conv2d, filters: 1, kernel_size: 3, padding: same, use_bias: false}]", {4, 4, 1}, 1);
  QuantizedModel qs(*ms, o);
  CHECK(qs.ebops_value() == doctest::Approx((4 * 4 + 8 * 6 + 4 * 9) * 2 * 3));  // corners, edges, interior
}

TEST_CASE("quantized forward uses the quantizers; pruned weights give exactly zero") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 1, use_bias: false}]", {2}, 1);
  QuantizedModel qm(*m, parse("default_fractional_bits: 2\ndefault_data_fractional_bits: 4\n"));
  nn::Parameter* w = m->layers()[0]->param("weight");
  w->var.value() = Tensor({2, 1}, {0.3f, -0.6f});  // -> 0.25, -0.5
  nn::Context ctx;
  Var y = m->forward(Var(Tensor({1, 2}, {0.53f, 0.2f})), ctx);  // inputs -> 0.5, 0.1875
  CHECK(y.value()[0] == doctest::Approx(0.25f * 0.5f - 0.5f * 0.1875f).epsilon(1e-7));
  Tensor& f = const_cast<Tensor&>(qm.layers()[0].weight->f());
  f[1] = -1.f;  // k + i + f = 1 + 0 - 1 = 0: pruned
  y = m->forward(Var(Tensor({1, 2}, {0.53f, 0.2f})), ctx);
  CHECK(y.value()[0] == doctest::Approx(0.125f));
  CHECK(qm.ebops_value() == doctest::Approx(1 * 5 * 3));  // only the kept weight: 5-bit input x 3-bit weight
}

TEST_CASE("inference reuses a parameter's codes only while its values and bits are unchanged") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 1, use_bias: false}]", {2}, 1);
  QuantizedModel qm(
      *m, parse("default_fractional_bits: 2\ndefault_data_fractional_bits: 4\ndefault_integer_bits: 1\n"));
  nn::Parameter* w = m->layers()[0]->param("weight");
  w->var.value() = Tensor({2, 1}, {0.3f, -0.6f});
  NoGradGuard ng;
  nn::Context ctx;
  const Tensor x({1, 2}, {0.5f, 0.5f});
  auto y = [&] { return m->forward(Var(x), ctx).value()[0]; };
  CHECK(y() == 0.5f * (0.25f - 0.5f));
  CHECK(y() == 0.5f * (0.25f - 0.5f));  // reused
  w->var.value()[0] = 0.8f;             // a new weight (an optimiser step, a loaded checkpoint)
  CHECK(y() == 0.5f * (0.75f - 0.5f));
  Tensor& f = const_cast<Tensor&>(qm.layers()[0].weight->f());
  f[0] = 0.f;  // 0.8 -> 1.0 on a grid of 1
  CHECK(y() == 0.5f * (1.f - 0.5f));
  Tensor& i = const_cast<Tensor&>(qm.layers()[0].weight->i());
  i[0] = 0.f;  // [-1, 0]: 1.0 saturates to 0 (k1 i0 f0)
  CHECK(y() == 0.5f * (0.f - 0.5f));
}

TEST_CASE("WRAP activations: calibration sets integer bits and signs from the data") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 1}]", {2}, 1);
  QuantizedModel qm(
      *m, parse("overflow_mode_data: WRAP\ndefault_data_fractional_bits: 2\ndata_granularity: per_weight\n"));
  Tensor x({3, 2}, {3.7f, 0.5f, -1.f, 3.9f, 0.f, 4.0f});
  qm.calibrate(*m, x);
  const Tensor& i = qm.layers()[0].input->i();
  CHECK(i[0] == 2.f);  // feature 0: min -1, max 3.7 -> max(ceil(log2 1), ceil(log2 3.95)) = 2
  CHECK(i[1] == 3.f);  // feature 1: max 4.0 -> ceil(log2 4.25) = 3
  CHECK(qm.layers()[0].input->k() == 1);
}

TEST_CASE(
    "WRAP activations: calibration traces x rounded at f only: idempotent, whatever the starting bits") {
  // a passes its input through (identity weights) to b. With a's input at i = 0 (range [-1, 1)), wrapping
  // would send 3.75 to b as -0.25; with i = -8 (k + i + f <= 0) a's input would be all zeros. Either way b's
  // range would be calibrated on values the deployed model never computes, since calibration gives a's input
  // i = 2. The result must not depend on the starting i, on a second pass, or on S_RND (RND at inference).
  const Tensor x({2, 2}, {3.7f, 0.5f, -1.f, 1.2f});
  auto calibrated = [&](const std::string& extra, int passes) {
    auto m = nn::Model::from_yaml(
        "layers: [{type: dense, name: a, units: 2, use_bias: false}, {type: dense, name: b, units: 1}]", {2},
        1);
    QuantizedModel qm(*m, parse("overflow_mode_data: WRAP\ndefault_data_fractional_bits: 2\n"
                                "data_granularity: per_weight\ndefault_integer_bits: 2\n"
                                "default_fractional_bits: 2\n" +
                                extra));
    m->layers()[0]->param("weight")->var.value() = Tensor({2, 2}, {1.f, 0.f, 0.f, 1.f});
    for (int p = 0; p < passes; ++p) qm.calibrate(*m, x);
    std::vector<float> bits = qm.layers()[0].input->i().storage();
    for (float v : qm.layers()[1].input->i().storage()) bits.push_back(v);
    return bits;
  };
  const std::vector<float> want = calibrated("default_data_integer_bits: 0\n", 1);
  REQUIRE(want.size() == 4);
  CHECK(want[0] == 2.f);  // a, feature 0: min -1, max 3.7: ceil(log2(3.7 + 0.25)) = 2
  CHECK(want[1] == 1.f);  // a, feature 1: max 1.2: ceil(log2(1.2 + 0.25)) = 1
  CHECK(want[2] == 2.f);  // b sees 3.75 and -1 (a wrapped 3.75 would give -0.25 and -1: i = 0)
  CHECK(want[3] == 1.f);  // 0.5 and 1.25: ceil(log2(1.25 + 0.25)) = 1
  CHECK(calibrated("default_data_integer_bits: 0\n", 2) == want);
  CHECK(calibrated("default_data_integer_bits: 6\n", 1) == want);
  CHECK(calibrated("default_data_integer_bits: -8\n", 1) == want);  // every input element without bits
  CHECK(calibrated("default_data_integer_bits: 0\nround_mode: S_RND\n", 1) == want);
}

TEST_CASE("SAT activations keep their bits through calibration (only WRAP ones follow the data)") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 1}]", {2}, 1);
  QuantizedModel qm(*m, parse("overflow_mode_data: SAT\ndefault_data_integer_bits: 0\n"
                              "default_data_fractional_bits: 2\ndata_granularity: per_weight\n"));
  const std::vector<float> before = qm.layers()[0].input->i().storage();
  const int k_before = qm.layers()[0].input->k();
  qm.calibrate(*m, Tensor({2, 2}, {3.7f, 0.5f, -1.f, 1.2f}));
  CHECK(qm.layers()[0].input->i().storage() == before);
  CHECK(qm.layers()[0].input->k() == k_before);
  CHECK_THROWS_WITH_AS(qm.layers()[0].input->begin_calibration(),
                       doctest::Contains("is not a WRAP activation quantizer"), std::exception);
}

TEST_CASE("WRAP activations in training: i <- max(i - 0.01, integer_bits_for(max|x|, f)) per entry") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 1}]", {3}, 1);
  QuantizedModel qm(*m, parse("overflow_mode_data: WRAP\ndefault_data_fractional_bits: 2\n"
                              "default_data_integer_bits: 4\ndata_granularity: per_weight\n"
                              "bit_range: {max_fractional_bits: 60}\n"));
  Tensor& f = const_cast<Tensor&>(qm.layers()[0].input->f());
  f[2] = 48.f;
  // Entry 0: max|x| 3.7 -> ceil(log2 3.95) = 2, below 4 - 0.01. Entry 1: |-20| -> ceil(log2 20.25) = 5.
  // Entry 2: 16 + 2^-48 lies above 2^4, so i = 5; log2 of it in double is exactly 4.0 (the rule is exact).
  Tensor x({2, 3}, {3.7f, 0.5f, 16.f, -1.f, -20.f, 0.f});
  std::mt19937_64 rng(1);
  nn::Context ctx(true, &rng);
  m->forward(Var(x), ctx);
  const Tensor& i = qm.layers()[0].input->i();
  CHECK(i[0] == 3.99f);
  CHECK(i[1] == 5.f);
  CHECK(i[2] == 5.f);
}

TEST_CASE("beta schedules and config errors") {
  HgqOptions o = parse(
      "hgq_beta: 1.0e-6\nbeta_schedule: {type: log, start_epoch: 10, end_epoch: 20, final_beta: 1.0e-4}\n");
  CHECK(scheduled_beta(o, 5) == doctest::Approx(1e-6));
  CHECK(scheduled_beta(o, 15) == doctest::Approx(1e-5));
  CHECK(scheduled_beta(o, 25) == doctest::Approx(1e-4));
  o = parse("hgq_beta: 0\nbeta_schedule: {type: linear, start_epoch: 0, end_epoch: 10, final_beta: 1.0}\n");
  CHECK(scheduled_beta(o, 5) == doctest::Approx(0.5));
  CHECK(kiln::testing::what_of([] { parse("round_mode: RND_UP\n"); }).find("q.yaml:1:1") !=
        std::string::npos);
  CHECK(kiln::testing::what_of([] { parse("hgq_bta: 1\n"); }).find("did you mean 'hgq_beta'") !=
        std::string::npos);
  CHECK(kiln::testing::what_of([] { parse("granularity: per_row\n"); }).find("per_row") != std::string::npos);
  CHECK(kiln::testing::what_of([] {
          parse("beta_schedule: {type: log, start_epoch: 5, end_epoch: 2}\n");
        }).find("end_epoch") != std::string::npos);
  // Bit widths beyond the quantizer's +-512 (or not numbers) are refused at the key, with its line.
  for (const char* bad :
       {"default_fractional_bits: 1.0e12\n", "default_data_integer_bits: -600\n",
        "default_data_fractional_bits: .nan\n", "bit_range: {max_fractional_bits: 1.0e12}\n",
        "bit_range: {min_integer_bits: -1.0e9}\n"}) {
    CAPTURE(bad);
    const std::string what = kiln::testing::what_of([&] { parse(bad); });
    CHECK(what.find("q.yaml:1:") != std::string::npos);
    CHECK(what.find("must be a bit width between -512 and 512") != std::string::npos);
  }
  CHECK_NOTHROW(parse("default_fractional_bits: 512\nbit_range: {min_fractional_bits: -512}\n"));
  {  // a layer's own bits too
    auto d = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 1}]", {2}, 1);
    const std::string what = kiln::testing::what_of(
        [&] { QuantizedModel q(*d, parse("layer_specific: {d: {weight: {fractional_bits: 1.0e9}}}\n")); });
    CHECK(what.find("fractional_bits must be a bit width") != std::string::npos);
  }
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 1}]", {2}, 1);
  CHECK(kiln::testing::what_of([&] {
          QuantizedModel q(*m, parse("layer_specific: {fc9: {enable: false}}\n"));
        }).find("'fc9'") != std::string::npos);
}

// 1200 samples of 8 standard normal features, labelled by the sign of x0 + c x_j.
data::Dataset sign_task(uint64_t seed, int64_t j, float c) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  data::Dataset d;
  d.x = Tensor({1200, 8});
  for (int64_t e = 0; e < d.x.size(); ++e) d.x[e] = n(rng);
  for (int64_t r = 0; r < 1200; ++r) d.labels.push_back(d.x[r * 8] + c * d.x[r * 8 + j] > 0 ? 1 : 0);
  d.class_names = {"0", "1"};
  return d;
}

TEST_CASE("an HGQ training run lowers EBOPs and keeps learning; without the EBOPs term it does not") {
  train::set_threads(1);
  data::Dataset d = sign_task(3, 1, 1.f);
  // Adam moves each bit width by about the learning rate per step, whatever beta is: 300 steps at 5e-3
  // can take ~1.5 bits off every width, i.e. EBOPs down by about 40%.
  auto run = [&](const std::string& beta, double* before, double* acc) {
    auto m = nn::Model::from_yaml(
        "layers: [{type: dense, units: 16, activation: relu}, {type: dense, units: 2}]", {8}, 1);
    HgqOptions o =
        parse("default_fractional_bits: 6\ndefault_data_fractional_bits: 6\nhgq_beta: " + beta + "\n");
    auto qm = std::make_shared<QuantizedModel>(*m, o);
    *before = qm->ebops_value();
    train::TrainOptions t;
    t.epochs = 8;
    t.batch_size = 32;
    t.optimizer.learning_rate = 5e-3f;
    train::Trainer tr(*m, t);
    tr.add_loss_term(std::make_shared<HgqLoss>(qm, o));
    tr.fit(d, data::Dataset(), nullptr, nullptr);
    *acc = train::evaluate(*m, d, t).accuracy;
    REQUIRE(tr.history().back().extra.size() == 4);
    CHECK(tr.history().back().extra[0].first == "ebops");
    CHECK(tr.history().back().extra[0].second == doctest::Approx(qm->ebops_value()));
    return qm->ebops_value();
  };
  double before, acc;
  double after = run("1.0e-4", &before, &acc);
  MESSAGE("beta 1e-4: EBOPs " << before << " -> " << after << ", accuracy " << acc);
  CHECK(after < 0.7 * before);
  CHECK(acc > 0.95);
  double control = run("0", &before, &acc);
  MESSAGE("beta 0: EBOPs " << before << " -> " << control << ", accuracy " << acc);
  CHECK(control > 0.9 * before);
}

TEST_CASE("freeze_bits: bit widths stop at the freeze epoch while the weights train on; resume re-freezes") {
  train::set_threads(1);
  data::Dataset d = sign_task(4, 2, -1.f);
  auto m = nn::Model::from_yaml(
      "layers: [{type: dense, units: 8, activation: relu}, {type: dense, units: 2}]", {8}, 1);
  HgqOptions o = parse(
      "default_fractional_bits: 6\ndefault_data_fractional_bits: 6\nhgq_beta: 1.0e-4\n"
      "freeze_bits: {epoch: 2}\n");
  CHECK(o.freeze.epoch == 2);
  auto qm = std::make_shared<QuantizedModel>(*m, o);
  train::TrainOptions t;
  t.epochs = 4;
  t.batch_size = 32;
  t.optimizer.learning_rate = 2e-2f;  // 38 steps an epoch move each width by up to ~0.8 bits
  train::Trainer tr(*m, t);
  auto loss = std::make_shared<HgqLoss>(qm, o);
  tr.add_loss_term(loss);
  std::vector<Tensor> bits_at_2;
  Tensor w_at_2;
  tr.fit(d, data::Dataset(), nullptr, [&](const train::EpochRecord& r) {
    if (r.epoch != 2) return;
    for (FixedQuantizer* q : qm->quantizers()) bits_at_2.push_back(q->f()), bits_at_2.push_back(q->i());
    w_at_2 = m->layers()[0]->param("weight")->var.value();
  });
  CHECK(loss->bits_frozen());
  const auto& h = tr.history();
  REQUIRE(h.size() == 4);
  auto extra = [](const train::EpochRecord& r, const std::string& k) {
    for (const auto& [key, v] : r.extra)
      if (key == k) return v;
    return -1.0;
  };
  // Stats are taken before end_epoch freezes: epoch 2 trained its bits, epoch 3 did not.
  CHECK(extra(h[1], "bits_frozen") == 0.0);
  CHECK(extra(h[2], "bits_frozen") == 1.0);
  CHECK(extra(h[0], "ebops") > extra(h[1], "ebops"));   // beta moved the bits before the freeze
  CHECK(extra(h[3], "ebops") == extra(h[1], "ebops"));  // and not after it
  size_t j = 0;
  for (FixedQuantizer* q : qm->quantizers()) {
    CHECK(q->f().vec() == bits_at_2[j++].vec());
    CHECK(q->i().vec() == bits_at_2[j++].vec());
  }
  CHECK(m->layers()[0]->param("weight")->var.value().vec() != w_at_2.vec());  // the weights kept training
  // A run resumed after the freeze epoch is frozen from its history.
  HgqLoss resumed(qm, o);
  resumed.resume({h[0]});
  CHECK(!resumed.bits_frozen());
  resumed.resume({h[0], h[1]});
  CHECK(resumed.bits_frozen());
  // Or at an EBOPs level.
  HgqOptions by_ebops = parse("freeze_bits: {ebops: 1.0e9}\n");
  HgqLoss at_level(qm, by_ebops);
  at_level.end_epoch(h[0]);
  CHECK(at_level.bits_frozen());
  CHECK(kiln::testing::what_of([] { parse("freeze_bits: {epoch: -1}\n"); }).find("epoch") !=
        std::string::npos);
  CHECK(kiln::testing::what_of([] { parse("freeze_bits: {epochs: 3}\n"); }).find("epochs") !=
        std::string::npos);
}

TEST_CASE(
    "activations train as the hardware computes them: tables for sigmoid/softmax, hard tanh by default") {
  auto m = nn::Model::from_yaml(R"(
layers:
  - {type: dense, name: d, units: 2, activation: sigmoid}
  - {type: tanh, name: t}
  - {type: softmax, name: s}
)",
                                {2}, 1);
  QuantizedModel qm(*m, parse("default_fractional_bits: 6\n"));
  nn::Layer* d = m->layers()[0];
  CHECK(d->transform(nn::Slot::kActivation) != nullptr);
  CHECK(m->layers()[1]->transform(nn::Slot::kActivation) != nullptr);
  nn::Context ctx;
  // The layer's output equals the table lookup of its pre-activation, not the exact sigmoid.
  Var x(Tensor({1, 2}, {0.3f, -0.7f}));
  Var pre = d->apply_kernel(d->transform(nn::Slot::kInput)->apply(x, ctx),
                            d->transform(nn::Slot::kWeight)->apply(d->param("weight")->var, ctx));
  pre = add(pre, d->transform(nn::Slot::kBias)->apply(d->param("bias")->var, ctx));
  Var out = d->forward(x, ctx);
  for (int j = 0; j < 2; ++j) CHECK(out.value()[j] == static_cast<float>(sigmoid_lut(pre.value()[j])));
  // Hard tanh clips; with use_real_tanh the tanh table is used instead.
  Var big(Tensor({1, 2}, {3.f, -0.5f}));
  CHECK(m->layers()[1]->forward(big, ctx).value().storage() == std::vector<float>{1.f, -0.5f});
  auto m2 = nn::Model::from_yaml("layers: [{type: tanh, name: t}]", {2}, 1);
  QuantizedModel q2(*m2, parse("use_real_tanh: true\n"));
  CHECK(m2->layers()[0]->forward(big, ctx).value()[0] == static_cast<float>(tanh_lut(3.0)));
  auto m3 = nn::Model::from_yaml("layers: [{type: sigmoid, name: g}]", {2}, 1);
  QuantizedModel q3(*m3, parse("use_lut_activations: false\n"));
  CHECK(m3->layers()[0]->transform(nn::Slot::kActivation) == nullptr);
}

TEST_CASE("data/jet_hgq.yaml: the hls4ml jet tagger with HGQ2's starting bit widths") {
  Config cfg = Config::load_file("data/jet_hgq.yaml");
  auto m = nn::Model::from_config(cfg.child("model"), {16}, 1);
  HgqOptions o = parse_quantization(cfg.child("compression").child("quantization"));
  QuantizedModel qm(*m, o);
  REQUIRE(qm.layers().size() == 4);
  CHECK(qm.layers()[0].weight->spec().overflow == Overflow::kSatSym);
  CHECK(qm.layers()[0].input->spec().overflow == Overflow::kWrap);
  CHECK(qm.mean_bits(false) == doctest::Approx(8.0));  // k1 i2 f5
  // Inputs k1 i2 f6 = 9 bits for fc1's 16 features; after ReLUs unsigned, 8 bits, for the other 128.
  CHECK(qm.mean_bits(true) == doctest::Approx((16 * 9 + 128 * 8) / 144.0));
  // 1,024 multiplies at 9 x 8 bits, 3,232 at 8 x 8, plus 133 biases at 8 bits.
  CHECK(qm.ebops_value() == doctest::Approx(1024.0 * 72 + 3232 * 64 + 133 * 8));
  CHECK(qm.uniform_ebops(8) == doctest::Approx(4256.0 * 64 + 133 * 8));
  CHECK(scheduled_beta(o, 2) == doctest::Approx(5e-7));
  CHECK(scheduled_beta(o, 200) == doctest::Approx(1e-3));
}

TEST_CASE("the PID controller raises beta above the EBOPs target and lowers it below") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 3}]", {2}, 1);
  HgqOptions o = parse(
      "default_fractional_bits: 2\ndefault_data_fractional_bits: 3\nhgq_beta: 1.0e-3\ntarget_ebops: 39\n");
  auto qm = std::make_shared<QuantizedModel>(*m, o);  // 6 * 4 * 3 + 3 * 3 = 81 EBOPs: twice the target
  HgqLoss loss(qm, o);
  train::EpochRecord r;
  loss.start_epoch(1);
  CHECK(loss.beta() == doctest::Approx(1e-3));
  loss.end_epoch(r);  // e = log(81 / 39) > 0
  loss.start_epoch(2);
  double up = loss.beta();
  CHECK(up == doctest::Approx(1e-3 * std::exp(std::log(81.0 / 39.0) * (1 + 2e-3))));
  HgqOptions low = o;
  low.pid.target_ebops = 162;  // above the current EBOPs: beta falls
  HgqLoss l2(qm, low);
  l2.end_epoch(r);
  l2.start_epoch(2);
  CHECK(l2.beta() < 1e-3);
}

TEST_CASE("inputs fed by a ReLU (through pooling and flatten) are unsigned; others keep their sign") {
  auto m = nn::Model::from_yaml(R"(
layers:
  - {type: conv1d, name: c, filters: 2, kernel_size: 2, activation: relu}
  - {type: max_pool1d, pool_size: 2}
  - {type: flatten}
  - {type: dense, name: d1, units: 3}
  - {type: dense, name: d2, units: 2}
)",
                                {6, 1}, 1);
  QuantizedModel qm(*m, parse("default_data_fractional_bits: 4\n"));
  REQUIRE(qm.layers().size() == 4);       // c, the pool (its input only), d1, d2
  CHECK(qm.layers()[0].input->k() == 1);  // the model input
  CHECK(qm.layers()[1].input->k() == 0);  // relu -> pool
  CHECK(qm.layers()[2].input->k() == 0);  // relu -> pool -> flatten
  CHECK(qm.layers()[3].input->k() == 1);  // after a linear dense
  // One bit fewer per input of d1: EBOPs count it.
  CHECK(qm.layers()[2].input->bits_value()[0] == 4.f);
  // Pooling: the sum of its input bits (conv1d output [5, 2] at k0 i0 f4).
  CHECK(qm.layers()[1].weight == nullptr);
  NoGradGuard ng;
  CHECK(qm.ebops(qm.layers()[1]).value()[0] == doctest::Approx(10 * 4));
}

TEST_CASE("bits(): one op, bit for bit the graph relu(round_ste(f) + round_ste(i) + k) * mask") {
  std::mt19937_64 rng(5);
  const Shape shape{3, 4, 6};
  Tensor mask(shape);
  for (int64_t j = 0; j < mask.size(); ++j) mask[j] = rng() % 3 == 0 ? 0.f : 1.f;
  Tensor seed(shape);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t j = 0; j < seed.size(); ++j) seed[j] = rng() % 7 == 0 ? -0.f : u(rng);
  for (Granularity g : {Granularity::kTensor, Granularity::kChannel, Granularity::kElement})
    for (bool train_i : {false, true})
      for (bool masked : {false, true}) {
        CAPTURE(static_cast<int>(g));
        CAPTURE(train_i);
        CAPTURE(masked);
        QuantSpec s;
        s.granularity = g, s.train_f = true, s.train_i = train_i;
        FixedQuantizer a("a", s, shape), b("b", s, shape);
        std::vector<nn::Parameter*> pa, pb;
        a.parameters(pa), b.parameters(pb);
        // Bits with ties (round half away from zero) and sums at or below zero (relu's step).
        for (size_t p = 0; p < pa.size(); ++p)
          for (int64_t e = 0; e < pa[p]->var.size(); ++e)
            pa[p]->var.value()[e] = pb[p]->var.value()[e] = static_cast<float>(rng() % 17) * 0.5f - 4.f;
        if (masked) a.set_mask(&mask), b.set_mask(&mask);
        // f's gradient also gets a term of its own, so the op adds to a gradient that holds values.
        auto loss = [&](const Var& bits, nn::Parameter* f) {
          return add(sum_all(mul(bits, Var(seed))), sum_all(mul_scalar(f->var, 0.3f)));
        };
        Var ya = a.bits(), yb = b.bits_graph();
        CHECK(std::memcmp(ya.value().data(), yb.value().data(), sizeof(float) * ya.size()) == 0);
        backward(loss(ya, pa[0]));
        backward(loss(yb, pb[0]));
        for (size_t p = 0; p < pa.size(); ++p) {
          const Tensor &ga = pa[p]->var.grad(), &gb = pb[p]->var.grad();
          REQUIRE(ga.shape() == gb.shape());
          CHECK(std::memcmp(ga.data(), gb.data(), sizeof(float) * ga.size()) == 0);
        }
        NoGradGuard ng;
        Tensor v = a.bits_value();
        CHECK(std::memcmp(v.data(), yb.value().data(), sizeof(float) * v.size()) == 0);
      }
}
