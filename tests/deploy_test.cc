// The deployed fixed-point model: integer requantisation equals the exact quantizer in every rounding and
// overflow mode, and deployed integer inference equals the quantized model's inference-mode forward on
// every sample (digits test split, a Fashion-MNIST subset, convolution variants).
#include "compress/deploy.h"

#include <cmath>
#include <set>

#include "compress/layer_norm_fixed.h"
#include "engine/data/loaders.h"
#include "engine/train/run_config.h"
#include "tests/gradcheck.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::compress;

namespace {

HgqOptions parse(const std::string& yaml) {
  return parse_quantization(Config::parse(yaml, "q.yaml", "quantization"));
}

// Mismatches between the deployed model and the quantized float forward on x. The program runs a batch of
// samples through each op at once: one sample at a time and batches of 3 (the last one partial) must give
// the same outputs as the default batch.
int64_t mismatches(nn::Model& m, const DeployedModel& d, const Tensor& x) {
  std::vector<double> dep = d.forward(x);
  CHECK(d.forward(x, 1) == dep);
  CHECK(d.forward(x, 3) == dep);
  NoGradGuard ng;
  nn::Context ctx;
  Tensor y = m.forward(Var(x), ctx).value();
  int64_t bad = 0;
  for (int64_t j = 0; j < y.size(); ++j) bad += static_cast<double>(y[j]) != dep[static_cast<size_t>(j)];
  return bad;
}

void train_hgq(nn::Model& m, std::shared_ptr<QuantizedModel> qm, const HgqOptions& o, const data::Dataset& d,
               int epochs) {
  train::TrainOptions t;
  t.epochs = epochs;
  t.batch_size = 64;
  t.optimizer.learning_rate = 3e-3f;
  train::Trainer tr(m, t);
  tr.add_loss_term(std::make_shared<HgqLoss>(qm, o));
  tr.fit(d, data::Dataset(), nullptr, nullptr);
}

// A model with random bit widths per element (within small ranges, some pruned), calibrated on random
// inputs: the deployed model must equal the quantized forward on them. Returns the deployed outputs. (SAT
// inputs keep their configured integer bits: calibration sets only WRAP ones.)
std::vector<double> deploy_random_widths(const std::string& layers, const Shape& in, const std::string& q,
                                         std::mt19937_64& rng) {
  auto m = nn::Model::from_yaml("layers:\n" + layers, in, 3);
  QuantizedModel qm(*m, parse(q));
  std::uniform_int_distribution<int> fb(-1, 4);
  for (FixedQuantizer* fq : qm.quantizers()) {
    Tensor& f = const_cast<Tensor&>(fq->f());
    for (int64_t j = 0; j < f.size(); ++j) f[j] = static_cast<float>(fb(rng));
  }
  Shape bs{64};
  bs.insert(bs.end(), in.begin(), in.end());
  Tensor x = kiln::testing::random_tensor(bs, rng, -3.f, 3.f);
  qm.calibrate(*m, x);
  DeployedModel d = DeployedModel::freeze(*m, qm);
  INFO(layers << q);
  CHECK(d.max_accumulator_bits() <= 24);
  CHECK(mismatches(*m, d, x) == 0);
  return d.forward(x);
}

}  // namespace

TEST_CASE("integer requantisation == exact quantizer, all rounding and overflow modes") {
  std::mt19937_64 rng(9);
  std::uniform_int_distribution<int64_t> code(-(1 << 20), 1 << 20);
  std::uniform_int_distribution<int> fc(-3, 12), k(0, 1), ii(-3, 6), ff(-2, 10);
  const Round rounds[] = {Round::kTrn,       Round::kTrnZero, Round::kRnd,     Round::kRndZero,
                          Round::kRndMinInf, Round::kRndInf,  Round::kRndConv, Round::kStochastic};
  const Overflow overflows[] = {Overflow::kWrap, Overflow::kSat, Overflow::kSatSym, Overflow::kSatZero};
  int64_t checked = 0, bad = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    int64_t c = code(rng);
    if (trial % 4 == 0) c &= ~int64_t{7};  // many exact ties
    int f_in = fc(rng);
    FixedType t{k(rng), ii(rng), ff(rng), rounds[trial % 8], overflows[(trial / 8) % 4]};
    if (trial % 16 == 1 && t.i + f_in >= 0)
      c = -(int64_t{1} << (t.i + f_in));  // exactly -2^i: SAT_SYM's edge
    double exact = quantize(std::ldexp(static_cast<double>(c), -f_in), t);
    double got = std::ldexp(static_cast<double>(requantize(c, f_in, t)), -t.f);
    bad += exact != got;
    ++checked;
  }
  CHECK(checked == 20000);
  CHECK(bad == 0);
  // Spot values: 0.3125 (code 5 at f=4) to <4,1> (k1 i0 f3) under RND / RND_CONV (vector 2 of the reference).
  CHECK(requantize(5, 4, {1, 0, 3, Round::kRnd, Overflow::kSat}) == 3);        // 0.375
  CHECK(requantize(5, 4, {1, 0, 3, Round::kRndConv, Overflow::kSat}) == 2);    // 0.25
  CHECK(requantize(-24, 4, {1, 0, 3, Round::kRnd, Overflow::kSatSym}) == -7);  // -1.5 -> -0.875
  CHECK(requantize(-16, 3, {1, 1, 2, Round::kRnd, Overflow::kSatSym}) ==
        -7);  // -2.0 -> -1.75 (the exact minimum)
  CHECK(requantize(-16, 3, {1, 1, 2, Round::kRnd, Overflow::kSat}) == -8);  // SAT keeps -2.0
}

TEST_CASE("digits HGQ model: deployed integer inference == quantized forward on the whole test split") {
  train::set_threads(1);
  Config cfg = Config::load_file("data/digits_hgq.yaml");
  train::LoadedData ld = train::load_data(train::parse_data(cfg.child("data")), 42);
  auto m = nn::Model::from_config(cfg.child("model"), {64}, 42);
  HgqOptions o = parse_quantization(cfg.child("compression").child("quantization"));
  o.beta = 3e-5;  // a short run that still prunes and narrows
  auto qm = std::make_shared<QuantizedModel>(*m, o);
  train_hgq(*m, qm, o, ld.split.train, 12);
  qm->calibrate(*m, ld.split.train.x);
  DeployedModel d = DeployedModel::freeze(*m, *qm);
  MESSAGE("digits: EBOPs " << qm->ebops_value() << ", widest accumulator " << d.max_accumulator_bits()
                           << " bits");
  CHECK(d.outputs() == 10);
  CHECK(mismatches(*m, d, ld.split.test.x) == 0);
  CHECK(mismatches(*m, d, ld.split.train.x) == 0);
  // And the model still classifies: the deployed outputs give the float model's accuracy.
  std::vector<double> y = d.forward(ld.split.test.x);
  int64_t correct = 0;
  for (int64_t r = 0; r < ld.split.test.size(); ++r) {
    int best = 0;
    for (int j = 1; j < 10; ++j)
      if (y[static_cast<size_t>(r * 10 + j)] > y[static_cast<size_t>(r * 10 + best)]) best = j;
    correct += best == ld.split.test.labels[static_cast<size_t>(r)];
  }
  CHECK(static_cast<double>(correct) / static_cast<double>(ld.split.test.size()) > 0.85);
}

TEST_CASE("Fashion-MNIST HGQ CNN: deployed == quantized forward on a test subset") {
  train::set_threads(1);
  data::Dataset train = data::load_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                                       "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  std::vector<int64_t> tr_idx, te_idx;
  for (int64_t j = 0; j < 3000; ++j) tr_idx.push_back(j);
  for (int64_t j = 9500; j < 10000; ++j) te_idx.push_back(j);
  data::Dataset a = data::subset(train, tr_idx), b = data::subset(train, te_idx);
  auto m = nn::Model::from_yaml(R"(
layers:
  - {type: conv2d, filters: 8, kernel_size: 3, activation: relu}
  - {type: max_pool2d, pool_size: 2}
  - {type: conv2d, filters: 8, kernel_size: 3, activation: relu}
  - {type: max_pool2d, pool_size: 2}
  - {type: flatten}
  - {type: dense, units: 10}
)",
                                {28, 28, 1}, 5);
  HgqOptions o = parse(
      "default_fractional_bits: 5\ndefault_data_fractional_bits: 4\noverflow_mode_data: WRAP\nhgq_beta: "
      "1.0e-7\n");
  auto qm = std::make_shared<QuantizedModel>(*m, o);
  train_hgq(*m, qm, o, a, 2);
  qm->calibrate(*m, a.x);
  DeployedModel d = DeployedModel::freeze(*m, *qm);
  MESSAGE("fashion CNN: widest accumulator " << d.max_accumulator_bits() << " bits");
  CHECK(mismatches(*m, d, b.x) == 0);
}

TEST_CASE("convolution variants deploy exactly: same padding, strides, depthwise, conv1d, SAT and WRAP") {
  std::mt19937_64 rng(2);
  auto check = [&](const std::string& layers, const Shape& in, const std::string& q) {
    deploy_random_widths(layers, in, q, rng);
  };
  const std::string sat = "overflow_mode_data: SAT\ndefault_data_integer_bits: 1\n";
  const std::string wrap = "overflow_mode_data: WRAP\n";
  check(
      "  - {type: conv2d, filters: 3, kernel_size: 3, strides: 2, padding: same, activation: relu}\n"
      "  - {type: conv2d, filters: 2, kernel_size: [2, 3]}\n",
      {7, 6, 2}, wrap);
  check(
      "  - {type: depthwise_conv2d, kernel_size: 3, padding: same}\n  - {type: max_pool2d, pool_size: 2, "
      "padding: same}\n"
      "  - {type: flatten}\n  - {type: dense, units: 3}\n",
      {5, 5, 3}, sat);
  check(
      "  - {type: conv1d, filters: 4, kernel_size: 3, strides: 2, activation: relu}\n  - {type: max_pool1d, "
      "pool_size: 2}\n"
      "  - {type: flatten}\n  - {type: dense, units: 2, use_bias: false}\n",
      {12, 2}, wrap);
}

TEST_CASE(
    "table activations deploy exactly: hard tanh, sigmoid and tanh tables, softmax (stable and latency)") {
  std::mt19937_64 rng(4);
  auto distinct = [](const std::vector<double>& v) { return std::set<double>(v.begin(), v.end()).size(); };
  // Hard tanh, a sigmoid layer after a linear Dense, and a softmax layer: every output is a probability.
  std::vector<double> y = deploy_random_widths(
      "  - {type: dense, units: 6, activation: tanh}\n  - {type: dense, units: 5}\n  - {type: sigmoid}\n"
      "  - {type: dense, units: 4}\n  - {type: softmax}\n",
      {3}, "overflow_mode_data: WRAP\n", rng);
  CHECK(distinct(y) > 4);
  for (double v : y) CHECK((v >= 0 && v <= 1.25));  // hls4ml's default invert table can overshoot 1 (lut.h)
  // tanh through its table, overridden table sizes and ranges, softmax along a conv's channels (latency).
  y = deploy_random_widths(
      "  - {type: conv1d, filters: 3, kernel_size: 2, activation: tanh}\n"
      "  - {type: conv1d, filters: 4, kernel_size: 2, activation: sigmoid}\n"
      "  - {type: conv1d, filters: 3, kernel_size: 1, activation: softmax}\n",
      {5, 2},
      "overflow_mode_data: SAT\ndefault_data_integer_bits: 2\nuse_real_tanh: true\n"
      "tanh_table: {table_size: 256, table_range: 2}\n"
      "sigmoid_table: {table_size: 64, table_type: 'ap_ufixed<8,0>'}\n"
      "softmax_table: {implementation: latency, table_size: 128}\n",
      rng);
  CHECK(distinct(y) > 4);
}

TEST_CASE("average pooling deploys exactly: trunc(sum / real inputs), same padding, 1-d, 2-d and global") {
  std::mt19937_64 rng(6);
  auto distinct = [](const std::vector<double>& v) { return std::set<double>(v.begin(), v.end()).size(); };
  std::vector<double> y = deploy_random_widths(
      "  - {type: conv2d, filters: 3, kernel_size: 2, activation: relu}\n  - {type: avg_pool2d, pool_size: "
      "3, strides: 2, padding: same}\n"
      "  - {type: flatten}\n  - {type: dense, units: 3}\n",
      {6, 5, 2}, "overflow_mode_data: WRAP\n", rng);
  CHECK(distinct(y) > 10);
  y = deploy_random_widths(
      "  - {type: conv1d, filters: 2, kernel_size: 2}\n  - {type: avg_pool1d, pool_size: 3}\n  - {type: "
      "flatten}\n"
      "  - {type: dense, units: 2}\n",
      {10, 2}, "overflow_mode_data: SAT\ndefault_data_integer_bits: 2\n", rng);
  CHECK(distinct(y) > 10);
  // Global average pooling: one window over the whole input.
  y = deploy_random_widths(
      "  - {type: conv2d, filters: 4, kernel_size: 2, activation: relu}\n  - {type: global_avg_pool}\n"
      "  - {type: dense, units: 3}\n",
      {4, 3, 2}, "overflow_mode_data: WRAP\n", rng);
  CHECK(distinct(y) > 10);
}

TEST_CASE("residual blocks deploy exactly: the body's output plus the block's input, nested blocks too") {
  const std::string nested =
      "  - {type: dense, units: 6, activation: relu}\n"
      "  - {type: residual, name: r1, layers: [{type: dense, units: 6, activation: relu}, {type: dense, "
      "units: 6}]}\n"
      "  - {type: residual, name: r2, layers: [{type: dense, units: 6, activation: tanh},\n"
      "                              {type: residual, name: r3, layers: [{type: dense, units: 6, activation: "
      "relu}]}]}\n"
      "  - {type: dense, units: 3}\n";
  std::mt19937_64 rng(9);
  // The adds' inputs quantized (HGQ's default: the block's input and the body's output each get a
  // quantizer), and not (the add then takes both as they are).
  std::vector<double> y = deploy_random_widths(nested, {4}, "overflow_mode_data: WRAP\n", rng);
  CHECK(std::set<double>(y.begin(), y.end()).size() > 10);
  y = deploy_random_widths(nested, {4},
                           "overflow_mode_data: WRAP\nlayer_specific: {r1: {enable: false}, r2: {enable: "
                           "false}, r2.r3: {enable: false}}\n",
                           rng);
  CHECK(std::set<double>(y.begin(), y.end()).size() > 10);
  // A body that starts with an activation: the kept input is the one before it.
  deploy_random_widths(
      "  - {type: dense, units: 5}\n  - {type: residual, layers: [{type: relu}, {type: dense, units: 5}]}\n",
      {3}, "overflow_mode_data: SAT\n", rng);
  deploy_random_widths(
      "  - {type: conv1d, filters: 3, kernel_size: 2, activation: relu}\n"
      "  - {type: residual, layers: [{type: conv1d, filters: 3, kernel_size: 3, padding: same}]}\n"
      "  - {type: flatten}\n  - {type: dense, units: 2}\n",
      {8, 2}, "overflow_mode_data: SAT\n", rng);
}

TEST_CASE(
    "a BatchNorm that cannot be folded is quantized on its own: running statistics train, deployed exactly") {
  const char* layers = R"(
layers:
  - {type: conv2d, name: c, filters: 3, kernel_size: 3, activation: relu}
  - {type: batch_norm, name: bn}
  - {type: flatten}
  - {type: dense, name: d, units: 4, activation: relu}
  - {type: batch_norm, name: bn2}
  - {type: dense, name: o, units: 2}
)";
  auto m = nn::Model::from_yaml(layers, {5, 5, 1}, 4);
  QuantizedModel qm(
      *m, parse("default_fractional_bits: 5\ndefault_data_fractional_bits: 4\noverflow_mode_data: WRAP\n"));
  REQUIRE(qm.layers().size() == 5);
  const LayerQuant& bn = qm.layers()[1];
  REQUIRE(bn.layer == m->layers()[1]);
  CHECK(bn.folded_bn == nullptr);
  CHECK(bn.weight->shape() == Shape{3});  // one scale per channel
  std::mt19937_64 rng(21);
  Tensor x = kiln::testing::random_tensor({64, 5, 5, 1}, rng, -1.f, 2.f);
  {  // training passes move the running statistics (the map uses them), and gradients reach gamma and beta
    nn::Context train_ctx{true, &rng};
    for (int i = 0; i < 20; ++i) m->forward(Var(x), train_ctx);
    Var loss = mean_all(square(m->forward(Var(x), train_ctx)));
    backward(loss);
    CHECK(bn.layer->param("gamma")->var.grad().vec().cwiseAbs().sum() > 0.f);
    CHECK(bn.layer->param("beta")->var.grad().vec().cwiseAbs().sum() > 0.f);
  }
  std::vector<nn::Buffer> buffers;
  bn.layer->buffers(buffers);
  REQUIRE(buffers.size() >= 2);
  CHECK(buffers[0].name == "bn.running_mean");
  CHECK(buffers[0].tensor->vec().cwiseAbs().maxCoeff() >
        0.05f);  // it was 0: the statistics followed the data
  for (auto* p : m->parameters())
    if (p->name.find("bn") == 0) p->var.value().vec().array() += 0.4f;
  qm.calibrate(*m, x);
  DeployedModel d = DeployedModel::freeze(*m, qm);
  CHECK(d.max_accumulator_bits() <= 24);
  CHECK(mismatches(*m, d, x) == 0);
  const std::vector<double> out =
      d.forward(x);  // one vector: begin() and end() of two temporaries never meet
  CHECK(std::set<double>(out.begin(), out.end()).size() > 20);
  // Random per-channel widths, and a BatchNorm on a 1-d input (fold_batch_norm off).
  std::mt19937_64 r2(5);
  deploy_random_widths(
      "  - {type: dense, units: 4}\n  - {type: batch_norm}\n  - {type: conv1d, filters: 2, kernel_size: 1}\n"
      "  - {type: batch_norm}\n",
      {3, 2}, "fold_batch_norm: false\n", r2);
}

TEST_CASE("layers the deployed model cannot run are refused by name") {
  // A BatchNorm that is neither folded nor quantized.
  auto m = nn::Model::from_yaml(
      "layers: [{type: dense, name: d, units: 3, activation: relu}, {type: batch_norm, name: bn}]", {2}, 1);
  QuantizedModel qm(*m, parse("default_fractional_bits: 4\nlayer_specific: {bn: {enable: false}}\n"));
  CHECK(kiln::testing::error_of([&] {
          DeployedModel::freeze(*m, qm);
        }).find("'bn' (batch_norm): a BatchNorm deploys folded") != std::string::npos);
  // A real-valued sigmoid (use_lut_activations: false) has no fixed-point form.
  auto m2 = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 3, activation: sigmoid}]", {2}, 1);
  QuantizedModel q2(*m2, parse("default_fractional_bits: 4\nuse_lut_activations: false\n"));
  const std::string msg = kiln::testing::error_of([&] { DeployedModel::freeze(*m2, q2); });
  CHECK(msg.find("'d' (dense): activation 'sigmoid' has no fixed-point form") != std::string::npos);
}

TEST_CASE(
    "BatchNorm folded into the preceding layer: same function, trainable through the fold, deployed "
    "exactly") {
  train::set_threads(1);
  const char* layers = R"(
layers:
  - {type: conv2d, name: c, filters: 3, kernel_size: 3}
  - {type: batch_norm, name: bn}
  - {type: relu}
  - {type: flatten}
  - {type: dense, name: d, units: 2}
  - {type: batch_norm, name: bn2}
)";
  auto m = nn::Model::from_yaml(layers, {5, 5, 1}, 4);
  std::mt19937_64 rng(8);
  Tensor x = kiln::testing::random_tensor({16, 5, 5, 1}, rng, -1.f, 1.f);
  {  // give the BatchNorms non-trivial statistics and affine parameters
    nn::Context train_ctx{true, &rng};
    for (int i = 0; i < 30; ++i) m->forward(Var(x), train_ctx);
    for (auto* p : m->parameters())
      if (p->name.find("bn") == 0) p->var.value().vec().array() += 0.3f;
  }
  NoGradGuard ng;
  nn::Context ctx;
  Tensor ref = m->forward(Var(x), ctx).value();
  // Fine quantization (f = 16) so that folding, not rounding, is what is compared.
  QuantizedModel qm(
      *m, parse("default_integer_bits: 6\ndefault_fractional_bits: 16\ndefault_data_integer_bits: 4\n"
                "default_data_fractional_bits: 16\nuse_high_granularity_quantization: false\n"));
  REQUIRE(qm.layers().size() == 2);
  CHECK(qm.layers()[0].folded_bn == m->layers()[1]);
  CHECK(qm.layers()[1].folded_bn == m->layers()[5]);
  Tensor folded = m->forward(Var(x), ctx).value();
  for (int64_t j = 0; j < ref.size(); ++j) CHECK(folded[j] == doctest::Approx(ref[j]).epsilon(1e-3));
}

TEST_CASE(
    "BatchNorm folding: gradients reach gamma and beta; the deployed model is exact; a bias is required") {
  std::mt19937_64 rng(12);
  auto m = nn::Model::from_yaml(
      "layers: [{type: dense, name: d, units: 4}, {type: batch_norm, name: bn}, {type: relu}, "
      "{type: dense, name: o, units: 2}]",
      {3}, 2);
  HgqOptions o =
      parse("default_fractional_bits: 5\ndefault_data_fractional_bits: 5\noverflow_mode_data: WRAP\n");
  auto qm = std::make_shared<QuantizedModel>(*m, o);
  Tensor x = kiln::testing::random_tensor({32, 3}, rng, -2.f, 2.f);
  nn::Context train_ctx{true, &rng};
  Var loss = mean_all(square(m->forward(Var(x), train_ctx)));
  backward(loss);
  nn::Layer* bn = m->layers()[1];
  CHECK(bn->param("gamma")->var.grad().vec().cwiseAbs().sum() > 0.f);
  CHECK(bn->param("beta")->var.grad().vec().cwiseAbs().sum() > 0.f);
  qm->calibrate(*m, x);
  DeployedModel d = DeployedModel::freeze(*m, *qm);
  CHECK(mismatches(*m, d, x) == 0);
  auto nb = nn::Model::from_yaml(
      "layers: [{type: dense, name: d, units: 4, use_bias: false}, {type: batch_norm, name: bn}]", {3}, 2);
  CHECK_THROWS_WITH_AS(QuantizedModel(*nb, o), doctest::Contains("give it use_bias: true"), InputError);
}

TEST_CASE("an HGQ model comes back from its checkpoint with its bit widths: same deployed outputs") {
  const std::string config = R"(
model:
  layers:
    - {type: dense, name: a, units: 4, activation: relu}
    - {type: dense, name: b, units: 2}
compression:
  quantization: {default_fractional_bits: 4, default_data_fractional_bits: 4, overflow_mode_data: WRAP}
)";
  Config cfg = Config::parse(config, "run.yaml");
  auto m = nn::Model::from_config(cfg.child("model"), {3}, 5);
  auto qm = std::make_shared<QuantizedModel>(
      *m, parse_quantization(cfg.child("compression").child("quantization")));
  std::mt19937_64 rng(1);
  for (FixedQuantizer* q : qm->quantizers()) {  // trained-looking, non-default bit widths
    Tensor& f = const_cast<Tensor&>(q->f());
    for (int64_t j = 0; j < f.size(); ++j) f[j] = static_cast<float>(rng() % 6);
  }
  Tensor x = kiln::testing::random_tensor({20, 3}, rng, -2.f, 2.f);
  qm->calibrate(*m, x);
  std::vector<double> before = DeployedModel::freeze(*m, *qm).forward(x);
  train::Checkpoint ck = train::make_checkpoint(*m, data::Standardizer(), data::Dataset());
  ck.config_yaml = config;
  ck.seed = 99;  // another seed: only the checkpoint's values can make the outputs agree
  kiln::testing::TempDir tmp;
  train::save_checkpoint(ck, tmp.path("q.ckpt"));
  RestoredModel r = restore_quantized(train::load_checkpoint(tmp.path("q.ckpt")));
  REQUIRE(r.quantized != nullptr);
  CHECK(DeployedModel::freeze(*r.model, *r.quantized).forward(x) == before);
  CHECK(r.quantized->ebops_value() == doctest::Approx(qm->ebops_value()));
}

TEST_CASE(
    "attention deploys exactly: scores, the scaled softmax table, the context; EBOPs count both products") {
  std::mt19937_64 rng(12);
  // 5 tokens of 6 features -> Q, K, V of 2 heads x 2 features -> attention -> a Dense head over every token.
  const std::string layers =
      "  - {type: dense, name: qkv, units: 12}\n"
      "  - {type: attention, name: att, heads: 2}\n"
      "  - {type: dense, name: proj, units: 3}\n"
      "  - {type: flatten}\n  - {type: dense, units: 2}\n";
  for (const std::string q :
       {"overflow_mode_data: WRAP\n", "overflow_mode_data: SAT\ndefault_data_integer_bits: 2\n"}) {
    std::vector<double> y = deploy_random_widths(layers, {5, 6}, q, rng);
    CHECK(std::set<double>(y.begin(), y.end()).size() > 20);
  }
  // EBOPs of the attention layer: scores sum_c (sum_i bq)(sum_j bk), context T * w_p * sum(bv).
  auto m = nn::Model::from_yaml("layers:\n" + layers, {5, 6}, 3);
  QuantizedModel qm(
      *m, parse("default_data_integer_bits: 1\ndefault_data_fractional_bits: 2\n"));  // 4-bit inputs
  const LayerQuant* att = nullptr;
  for (const auto& l : qm.layers())
    if (l.layer->name() == "att") att = &l;
  REQUIRE(att);
  // Every element 4 bits: scores 5 * 5 * 4 features * 16 = 1600; context 5 * 16 (ap_fixed<16,6>) * 5 * 4 * 4
  // = 6400.
  CHECK(qm.ebops(*att).value()[0] == doctest::Approx(1600 + 6400));
  CHECK(qm.uniform_ebops(8) > 0);
}

TEST_CASE(
    "LayerNorm, a positional embedding and the gelu table deploy exactly: the integer forms are what "
    "training computes") {
  // gelu by table: an entry inside [-4, 4), x itself above, 0 below.
  CHECK(gelu_lut(5.5) == 5.5);
  CHECK(gelu_lut(-4.5) == 0.0);
  CHECK(std::fabs(gelu_lut(1.0) - 0.8413) < 0.01);
  CHECK(std::fabs(gelu_lut(-1.0) + 0.1587) < 0.01);
  std::mt19937_64 rng(13);
  const std::string layers =
      "  - {type: dense, name: embed, units: 6}\n"
      "  - {type: positional_embedding, name: pos}\n"
      "  - {type: layer_norm, name: ln}\n"
      "  - {type: dense, name: head, units: 3, activation: gelu}\n"
      "  - {type: layer_norm, name: ln2}\n"
      "  - {type: flatten}\n  - {type: dense, units: 2}\n";
  for (const std::string q :
       {"overflow_mode_data: WRAP\n", "overflow_mode_data: SAT\ndefault_data_integer_bits: 2\n"}) {
    std::vector<double> y = deploy_random_widths(layers, {4, 5}, q, rng);
    CHECK(std::set<double>(y.begin(), y.end()).size() > 8);
  }
  // The table: x^ of (1, 2, 3, 4) is (x - 2.5) / sqrt(1.25) = (-1.342, -0.447, 0.447, 1.342) within a code.
  const std::vector<int64_t> t = ln_table(4);
  const int64_t x[4] = {16, 32, 48, 64};
  int64_t xh[4];
  ln_normalize(t, x, 4, xh);
  const double want[4] = {-1.3416, -0.4472, 0.4472, 1.3416};
  for (int e = 0; e < 4; ++e)
    CHECK(std::fabs(std::ldexp(static_cast<double>(xh[e]), -kLnFrac) - want[e]) <= 2.0 / (1 << kLnFrac));
  // Inputs too wide for the sum of squares in 64 bits are refused with the layer's name.
  ProgramBuilder b;
  b.input({2, 64}, std::vector<FixedType>(128, FixedType{1, 20, 8, Round::kRnd, Overflow::kSat}));
  MacParams m;
  m.w_code.assign(64, 1), m.w_frac.assign(64, 0),
      m.w_types.assign(64, FixedType{1, 1, 0, Round::kRnd, Overflow::kSat});
  CHECK(kiln::testing::what_of([&] { b.layer_norm("ln_wide", m); }).find("'ln_wide'") != std::string::npos);
  const int64_t flat[4] = {5, 5, 5, 5};
  ln_normalize(t, flat, 4, xh);
  CHECK((xh[0] == 0 && xh[3] == 0));
}

TEST_CASE(
    "VAE sampling and a sum of squares deploy exactly: z = mu is a slice, the score an exact integer sum; "
    "EBOPs count b^2 per square") {
  std::mt19937_64 rng(17);
  auto distinct = [](const std::vector<double>& v) { return std::set<double>(v.begin(), v.end()).size(); };
  // An encoder's anomaly score sum(mu^2) (AXOL1TL): dense -> (mu, log-variance) -> mu -> sum of squares.
  const std::string score =
      "  - {type: dense, name: enc, units: 8}\n  - {type: vae_sampling, name: z}\n"
      "  - {type: sum_squares, name: score}\n";
  for (const std::string q :
       {"overflow_mode_data: WRAP\n", "overflow_mode_data: SAT\ndefault_data_integer_bits: 2\n"}) {
    std::vector<double> y = deploy_random_widths(score, {5}, q, rng);
    CHECK(y.size() == 64);
    CHECK(distinct(y) > 20);
    for (double v : y) CHECK(v >= 0);
  }
  // mu after a ReLU (a slice keeps the buffer's narrowed range), the score into a Dense (its input quantizer
  // unsigned), and the sampling layer as the model's output (z = mu).
  deploy_random_widths(
      "  - {type: dense, units: 6, activation: relu}\n  - {type: vae_sampling}\n  - {type: sum_squares}\n"
      "  - {type: dense, units: 2}\n",
      {4}, "overflow_mode_data: WRAP\n", rng);
  std::vector<double> z = deploy_random_widths(
      "  - {type: conv1d, filters: 2, kernel_size: 2}\n  - {type: flatten}\n  - {type: dense, units: 6}\n"
      "  - {type: vae_sampling}\n",
      {4, 3}, "overflow_mode_data: SAT\n", rng);
  CHECK(z.size() == 64 * 3);
  CHECK(distinct(z) > 20);
  // The layers' quantizers: the score's input is signed (in training z = mu + eps sigma takes either sign),
  // the Dense after it unsigned; EBOPs with every input 4 bits: 3 squares of 16, and uniform 8 bits 3 x 64.
  auto m = nn::Model::from_yaml(
      "layers:\n  - {type: dense, name: enc, units: 6, activation: relu}\n  - {type: vae_sampling}\n"
      "  - {type: sum_squares, name: score}\n  - {type: dense, name: out, units: 1}\n",
      {2}, 3);
  QuantizedModel qm(*m, parse("default_data_integer_bits: 1\ndefault_data_fractional_bits: 2\n"));
  REQUIRE(qm.layers().size() == 3);
  const LayerQuant &sq = qm.layers()[1], &out = qm.layers()[2];
  REQUIRE(sq.layer->name() == "score");
  CHECK(sq.input->k() == 1);
  CHECK(out.input->k() == 0);
  CHECK(sq.weight == nullptr);
  CHECK(qm.ebops(sq).value()[0] == doctest::Approx(3 * 16));
  const double dense_uniform = (2 * 6 + 1 * 1) * 64.0 + (6 + 1) * 8.0;  // macs x 8 x 8, biases x 8
  CHECK(qm.uniform_ebops(8) == doctest::Approx(dense_uniform + 3 * 64));
}

TEST_CASE("a sum of squares is refused without its input quantizer, upsampling always, naming the layer") {
  auto m = nn::Model::from_yaml(
      "layers: [{type: dense, name: d, units: 4}, {type: vae_sampling}, {type: sum_squares, name: s}]", {2},
      1);
  QuantizedModel qm(*m, parse("layer_specific: {s: {enable: false}}\n"));
  CHECK(kiln::testing::error_of([&] {
          DeployedModel::freeze(*m, qm);
        }).find("'s' (sum_squares): a sum of squares deploys only with its input quantized") !=
        std::string::npos);
  auto up = nn::Model::from_yaml(
      "layers: [{type: conv1d, name: c, filters: 2, kernel_size: 2}, {type: upsample1d, name: up}, "
      "{type: flatten}, {type: dense, units: 2}]",
      {4, 1}, 1);
  QuantizedModel qu(*up, parse("default_fractional_bits: 4\n"));
  const std::string msg = kiln::testing::error_of([&] { DeployedModel::freeze(*up, qu); });
  CHECK(msg.find("cannot deploy layer 'up' (upsample1d): upsampling is not supported") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
}

TEST_CASE("the sum of squares op: exact range, and inputs whose squares exceed 62 bits are refused by name") {
  ProgramBuilder b;
  b.input({3},
          {FixedType{1, 2, 1, Round::kRnd, Overflow::kSat}, FixedType{1, 1, 1, Round::kRnd, Overflow::kSat},
           FixedType{1, 0, 2, Round::kRnd, Overflow::kSat}});
  b.sum_squares("s");
  // Codes on the grid 2^-2: x0 in [-16, 14], x1 in [-8, 6], x2 in [-4, 3]; their squares on 2^-4.
  CHECK(b.current().frac == 4);
  CHECK(b.current().lo[0] == 0);
  CHECK(b.current().hi[0] == 256 + 64 + 16);
  Program p = b.finish();
  CHECK(run(p, {-16, 6, 3}) == std::vector<int64_t>{256 + 36 + 9});
  ProgramBuilder wide;
  wide.input({5}, std::vector<FixedType>(5, FixedType{1, 30, 0, Round::kRnd, Overflow::kSat}));  // 5 x 2^60
  CHECK(kiln::testing::what_of([&] { wide.sum_squares("wide_score"); }).find("'wide_score'") !=
        std::string::npos);
}

// The interpreter's Dense and Conv run as one matrix product in float (partial_bound < 2^24), double (< 2^53)
// or int64 (wider): each must equal the element-by-element sum of the definition (Op::for_each_term) on
// random shapes, strides, paddings, bit widths, pruned weights and input codes at the ends of their ranges.
TEST_CASE("Dense and Conv products (float, double and int64 paths) == the element-by-element definition") {
  std::mt19937_64 rng(23);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int paths[3] = {0, 0, 0};  // float, double, int64
  int refused = 0;           // accumulators of 2^62 or more
  for (int trial = 0; trial < 90; ++trial) {
    const bool dense = trial % 3 == 0;
    const int in_bits = uni(1, 26), w_bits = uni(1, 26);  // i + f of the input and weight types
    MacParams s;
    s.dense = dense;
    const int64_t n_out = uni(1, 9);
    Shape in;
    if (dense) {
      in = {uni(1, 3), uni(1, 40)};
      s.out_shape = {in[0], n_out};
    } else {
      in = {uni(1, 7), uni(1, 7), uni(1, 5)};
      s.geom.dims = 2;
      s.geom.window = {uni(1, static_cast<int>(in[0])), uni(1, static_cast<int>(in[1]))};
      s.geom.strides = {uni(1, 2), uni(1, 2)};
      s.geom.padding = uni(0, 1) ? Padding::kSame : Padding::kValid;
      s.out_shape = {conv_out_size(in[0], s.geom.window[0], s.geom.strides[0], s.geom.padding),
                     conv_out_size(in[1], s.geom.window[1], s.geom.strides[1], s.geom.padding), n_out};
    }
    s.in_shape = in;
    const int64_t n_w = (dense ? in[1] : s.geom.window[0] * s.geom.window[1] * in[2]) * n_out;
    std::uniform_int_distribution<int64_t> wcode(-(int64_t{1} << w_bits), (int64_t{1} << w_bits) - 1);
    for (int64_t j = 0; j < n_w; ++j) {
      const int f = uni(0, 3);
      s.w_code.push_back(uni(0, 4) == 0 ? 0 : wcode(rng));  // some pruned
      s.w_frac.push_back(f);
      s.w_types.push_back({1, w_bits - f, f, Round::kRnd, Overflow::kSat});
    }
    for (int64_t n = 0; n < n_out; ++n) s.b_code.push_back(wcode(rng)), s.b_frac.push_back(uni(0, 12));
    std::vector<FixedType> in_types;
    for (int64_t e = 0; e < shape_numel(in); ++e) {
      const int f = uni(0, 4);
      in_types.push_back({1, in_bits - f, f, Round::kRnd, Overflow::kWrap});
    }
    // The exact bound of the accumulator (|bias| plus every term's largest magnitude, in 128 bits), over
    // the terms of a twin op: the same codes' signs, grids and geometry, small enough never to be refused.
    MacParams twin = s;
    for (auto& c : twin.w_code) c = c > 0 ? 1 : c < 0 ? -1 : 0;
    for (auto& c : twin.b_code) c = c > 0 ? 1 : c < 0 ? -1 : 0;
    ProgramBuilder tb;
    tb.input(in, in_types);
    tb.mac("twin", twin);
    const Program tp = tb.finish();
    const Op& top = tp.ops.back();
    const Buffer& tx = tp.input();
    __int128 exact = 0;
    for (int64_t o = 0; o < tp.out().size; ++o) {
      const size_t n = static_cast<size_t>(o % n_out);
      __int128 abs = s.b_code[n] == 0 ? 0 : s.b_code[n] * (__int128{1} << (tp.out().frac - s.b_frac[n]));
      abs = abs < 0 ? -abs : abs;
      top.for_each_term(o, [&](int64_t xi, int64_t wi) {
        const size_t j = static_cast<size_t>(wi);
        if (s.w_code[j] == 0) return;  // pruned: 0 on any grid, even a finer one than w_frac
        const __int128 w =
            s.w_code[j] * (__int128{1} << (top.w_frac - s.w_frac[j])) * (__int128{1} << top.prod_shift);
        const __int128 a = tx.lo[static_cast<size_t>(xi)] * w, c = tx.hi[static_cast<size_t>(xi)] * w;
        abs += std::max(a < 0 ? -a : a, c < 0 ? -c : c);
      });
      exact = std::max(exact, abs);
    }
    // The builder refuses exactly the accumulators of 2^62 or more, which int64 arithmetic would wrap.
    ProgramBuilder b;
    b.input(in, in_types);
    const bool wide = exact >= (__int128{1} << 62);
    if (wide) {
      CHECK(kiln::testing::what_of([&] { b.mac("mac", s); }).find("'mac': accumulator wider than 62 bits") !=
            std::string::npos);
      ++refused;
      continue;
    }
    b.mac("mac", s);
    const Program p = b.finish();
    const Op& op = p.ops.back();
    CHECK(op.partial_bound == static_cast<int64_t>(exact));
    paths[!op.weights_f.empty() ? 0 : !op.weights_d.empty() ? 1 : 2]++;
    const Buffer& xb = p.input();
    std::vector<int64_t> batch_x, batch_y;  // the four samples one after the other, and their outputs
    for (int rep = 0; rep < 4; ++rep) {
      std::vector<int64_t> x(static_cast<size_t>(xb.size));
      for (size_t e = 0; e < x.size(); ++e) {  // the ends of each range often, so the bound is reached
        const int pick = uni(0, 3);
        x[e] = pick == 0   ? xb.lo[e]
               : pick == 1 ? xb.hi[e]
                           : std::uniform_int_distribution<int64_t>(xb.lo[e], xb.hi[e])(rng);
        if (uni(0, 5) == 0) x[e] = 0;
      }
      const std::vector<int64_t> y = run(p, x);
      const Buffer& yb = p.out();
      REQUIRE(static_cast<int64_t>(y.size()) == yb.size);
      int64_t bad = 0;
      for (int64_t o = 0; o < yb.size; ++o) {
        int64_t acc = 0;
        op.for_each_term(o, [&](int64_t xi, int64_t wi) {
          acc += x[static_cast<size_t>(xi)] * op.weights[static_cast<size_t>(wi)];
        });
        const int64_t want = op.bias[static_cast<size_t>(o % op.n_out)] + acc * (int64_t{1} << op.prod_shift);
        bad += y[static_cast<size_t>(o)] != want;
      }
      INFO("trial " << trial << (dense ? " dense" : " conv") << ", partial bound " << op.partial_bound);
      CHECK(bad == 0);
      batch_x.insert(batch_x.end(), x.begin(), x.end());
      batch_y.insert(batch_y.end(), y.begin(), y.end());
    }
    // The same four samples as one batch (each path's per-sample offsets), twice through one workspace.
    Codes ws;
    for (int again = 0; again < 2; ++again) {
      INFO("trial " << trial << (dense ? " dense" : " conv") << ", a batch of 4");
      CHECK(run(p, batch_x.data(), 4, ws) == batch_y);
    }
  }
  INFO("float " << paths[0] << ", double " << paths[1] << ", int64 " << paths[2] << ", refused " << refused);
  CHECK(paths[0] > 5);
  CHECK(paths[1] > 5);
  CHECK(paths[2] > 5);
  CHECK(refused > 0);
}

// Value ranges past 2^62 are refused where the builder computes them, naming the op: in plain int64 they
// would wrap into a small, plausible range (and the program would run with wrong bounds and a wrong product
// path).
TEST_CASE("ranges past 62 bits are refused, not wrapped: residual add, average pool, constant, attention") {
  const FixedType wide{1, 60, 0, Round::kRnd, Overflow::kSat};  // codes in [-2^60, 2^60 - 1]
  {
    ProgramBuilder b;
    b.input({4}, std::vector<FixedType>(4, wide));
    b.keep("kept", {});
    b.quantize("fine", std::vector<FixedType>(4, FixedType{1, 40, 20, Round::kRnd, Overflow::kSat}));
    // The kept input on the grid 2^-20: 2^80.
    CHECK(kiln::testing::what_of([&] { b.add("add"); }).find("'add': residual sum wider than 62 bits") !=
          std::string::npos);
  }
  {
    ProgramBuilder b;
    b.input({3, 3, 1}, std::vector<FixedType>(9, wide));
    nn::Geometry g;
    g.window = {3, 3}, g.strides = {3, 3}, g.max = false;
    // Nine inputs of 2^60 sum to 9 x 2^60, past int64 itself.
    CHECK(kiln::testing::what_of([&] {
            b.avg_pool("pool", {3, 3, 1}, {1, 1, 1}, g);
          }).find("'pool': window sum wider than 62 bits") != std::string::npos);
  }
  {
    ProgramBuilder b;
    b.input({2}, std::vector<FixedType>(2, wide));
    CHECK(kiln::testing::what_of([&] {
            b.add_const("shift", {1, 1}, {20, 20});
          }).find("'shift': sum wider than 62 bits") != std::string::npos);
  }
  {
    ProgramBuilder b;  // two tokens of Q, K, V with one feature each: a score of 2^40 x 2^40
    b.input({2, 3}, std::vector<FixedType>(6, FixedType{1, 40, 0, Round::kRnd, Overflow::kSat}));
    CHECK(kiln::testing::what_of([&] {
            b.attention("att", 1, SoftmaxLutSpec{});
          }).find("'att.scores': accumulator wider than 62 bits") != std::string::npos);
  }
}

// The float path converts input codes to float through a double trick that is exact only below 2^51 in
// magnitude; a product with wider input codes (possible when the weights that meet them are 0, so the float
// path still applies) must convert them directly.
TEST_CASE("a float-path product whose input codes pass 2^51 (zero weights) gives the bias exactly") {
  for (bool dense : {true, false}) {
    CAPTURE(dense);
    MacParams s;
    s.dense = dense;
    const Shape in = dense ? Shape{2, 6} : Shape{4, 4, 2};
    if (dense) {
      s.out_shape = {2, 3};
    } else {
      s.geom.dims = 2, s.geom.window = {3, 3}, s.geom.strides = {1, 1}, s.geom.padding = Padding::kValid;
      s.out_shape = {2, 2, 3};
    }
    s.in_shape = in;
    const int64_t n_w = (dense ? 6 : 3 * 3 * 2) * 3;
    for (int64_t j = 0; j < n_w; ++j)
      s.w_code.push_back(0), s.w_frac.push_back(0),
          s.w_types.push_back({1, 4, 0, Round::kRnd, Overflow::kSat});
    for (int n = 0; n < 3; ++n) s.b_code.push_back(5 - 4 * n), s.b_frac.push_back(0);
    std::vector<FixedType> in_types(static_cast<size_t>(shape_numel(in)),
                                    FixedType{1, 59, 0, Round::kRnd, Overflow::kWrap});  // 60-bit codes
    ProgramBuilder b;
    b.input(in, in_types);
    b.mac("mac", s);
    const Program p = b.finish();
    REQUIRE(!p.ops.back().weights_f.empty());
    std::vector<int64_t> x(static_cast<size_t>(p.input().size));
    for (size_t e = 0; e < x.size(); ++e)
      x[e] = (e % 2 ? -1 : 1) * ((int64_t{1} << 59) - 1 - static_cast<int64_t>(e));
    const std::vector<int64_t> y = run(p, x);
    const Op& op = p.ops.back();
    for (size_t o = 0; o < y.size(); ++o) CHECK(y[o] == op.bias[o % 3]);
  }
}

// The double path: input codes between 2^51 and 2^53 meet a weight of 1, so the product is exact in double
// but the fast int64 -> double conversion (exact only below 2^51) must not be used for them.
TEST_CASE("a double-path product with input codes past 2^51 gives the exact integer sum") {
  MacParams s;
  s.dense = true;
  const Shape in{1, 4};
  s.in_shape = in, s.out_shape = {1, 2};
  // w[j][n]: input 0 feeds output 0 with weight 1, input 1 feeds output 1 with weight -1, the rest 0.
  const int64_t w[4][2] = {{1, 0}, {0, -1}, {0, 0}, {0, 0}};
  for (auto& row : w)
    for (int64_t v : row)
      s.w_code.push_back(v), s.w_frac.push_back(0),
          s.w_types.push_back({1, 2, 0, Round::kRnd, Overflow::kSat});
  s.b_code = {3, -7}, s.b_frac = {0, 0};
  std::vector<FixedType> in_types(4, FixedType{1, 52, 0, Round::kRnd, Overflow::kWrap});  // 53-bit codes
  ProgramBuilder b;
  b.input(in, in_types);
  b.mac("mac", s);
  const Program p = b.finish();
  const Op& op = p.ops.back();
  REQUIRE(op.weights_f.empty());
  REQUIRE(!op.weights_d.empty());  // |x w| < 2^53: the double path
  const int64_t big = (int64_t{1} << 52) - 12345, odd = -((int64_t{1} << 51) + 77);
  const std::vector<int64_t> y = run(p, {big, odd, (int64_t{1} << 52) - 1, -(int64_t{1} << 52)});
  CHECK(y[0] == op.bias[0] + big * (int64_t{1} << op.prod_shift));
  CHECK(y[1] == op.bias[1] - odd * (int64_t{1} << op.prod_shift));
}

TEST_CASE("the deployed program refuses input codes outside their types' range, and a wrong count, by name") {
  ProgramBuilder b;
  b.input({1, 3},
          std::vector<FixedType>(3, FixedType{1, 2, 1, Round::kRnd, Overflow::kSat}));  // codes [-8, 7]
  b.relu("relu");
  const Program p = b.finish();
  CHECK(run(p, {-8, 0, 7}) == std::vector<int64_t>{0, 0, 7});
  CHECK_THROWS_WITH_AS(run(p, {0, 8, 0}), doctest::Contains("input code 8 at element 1 is outside"),
                       InputError);
  CHECK_THROWS_WITH_AS(run(p, {-9, 0, 0}), doctest::Contains("[-8, 7]"), InputError);
  CHECK_THROWS_AS(run(p, {0, 0}), ShapeError);
}

// The quantize op's branch-free requantisation equals requantize() (the per-element definition) for every
// rounding and overflow mode, uniform, per-channel and per-element types, pruned entries and both grids.
TEST_CASE("quantize op: RequantizeRows == requantize element by element, all modes") {
  std::mt19937_64 rng(29);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const Round rounds[] = {Round::kTrn, Round::kTrnZero, Round::kRnd, Round::kRndZero, Round::kRndConv};
  const Overflow overflows[] = {Overflow::kWrap, Overflow::kSat, Overflow::kSatSym, Overflow::kSatZero};
  for (int trial = 0; trial < 200; ++trial) {
    const int fc = uni(-2, 20), k = uni(0, 1), entries = uni(1, 12);
    const Round round = rounds[uni(0, 4)];
    const Overflow ov = overflows[uni(0, 3)];
    std::vector<Requantizer> rq;
    std::vector<FixedType> types;
    std::vector<int> shift;
    for (int e = 0; e < entries; ++e) {
      types.push_back({k, uni(-3, 8), uni(-2, 12), round, ov});
      shift.push_back(uni(0, 6));
      rq.emplace_back(fc, types.back(), shift.back());
    }
    const RequantizeRows rows(rq);
    const int64_t n = entries * uni(1, 20);
    std::vector<int64_t> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    std::uniform_int_distribution<int64_t> code(-(int64_t{1} << 30), int64_t{1} << 30);
    for (auto& v : x) v = uni(0, 2) == 0 ? code(rng) >> uni(0, 30) : code(rng);
    rows.run(x.data(), y.data(), n);
    int64_t bad = 0;
    for (int64_t j = 0; j < n; ++j) {
      const size_t e = static_cast<size_t>(j % entries);
      bad += y[static_cast<size_t>(j)] !=
             requantize(x[static_cast<size_t>(j)], fc, types[e]) * (int64_t{1} << shift[e]);
    }
    INFO("trial " << trial);
    CHECK(bad == 0);
  }
  // Wide types and codes: masks and sign bits above bit 31, shifts up to 60, codes up to 2^61.
  for (int trial = 0; trial < 200; ++trial) {
    const int fc = uni(0, 60), k = uni(0, 1), entries = uni(1, 6);
    const Round round = rounds[uni(0, 4)];
    const Overflow ov = overflows[uni(0, 3)];
    std::vector<Requantizer> rq;
    std::vector<FixedType> types;
    for (int e = 0; e < entries; ++e) {
      const int f = uni(-4, 40), i = uni(-f + 1 - k, 60 - k - f);  // width k + i + f in [1, 60]
      types.push_back({k, i, f, round, ov});
      rq.emplace_back(fc, types.back(), 0);
    }
    const RequantizeRows rows(rq);
    const int64_t n = entries * uni(1, 20);
    std::vector<int64_t> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    std::uniform_int_distribution<int64_t> code(-(int64_t{1} << 61), int64_t{1} << 61);
    for (auto& v : x) v = code(rng) >> uni(0, 60);
    rows.run(x.data(), y.data(), n);
    int64_t bad = 0;
    for (int64_t j = 0; j < n; ++j)
      bad += y[static_cast<size_t>(j)] !=
             requantize(x[static_cast<size_t>(j)], fc, types[static_cast<size_t>(j % entries)]);
    INFO("wide trial " << trial);
    CHECK(bad == 0);
  }
}

// quantize_input takes the quantizer's vectorised kernel where it applies: its codes must be the scalar
// definition's (quantize_traced at inference, then the code on the input buffer's grid) for every rounding
// and overflow mode, uniform, per-channel and per-element types, pruned elements, ties and values far
// outside the range.
TEST_CASE("quantize_input == the scalar quantizer element by element, all modes and patterns") {
  std::mt19937_64 rng(31);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const Round rounds[] = {Round::kTrn, Round::kRnd, Round::kRndConv, Round::kTrnZero};
  const Overflow overflows[] = {Overflow::kWrap, Overflow::kSat, Overflow::kSatSym, Overflow::kSatZero};
  for (int trial = 0; trial < 120; ++trial) {
    const int k = uni(0, 1), pattern = uni(0, 2), H = uni(1, 4), C = uni(1, 5);
    // Mostly the kernel's RND and TRN; RND_CONV and TRN_ZERO take the scalar definition.
    const Round round = rounds[trial % 4 == 3 ? uni(2, 3) : uni(0, 1)];
    const Overflow ov = overflows[uni(0, 3)];
    std::vector<FixedType> types;
    FixedType one{k, uni(-2, 5), uni(-2, 8), round, ov};
    for (int e = 0; e < H * C; ++e) {
      if (pattern == 1 && e >= C) {
        types.push_back(types[static_cast<size_t>(e % C)]);
        continue;
      }
      // Some elements pruned (k + i + f <= 0).
      types.push_back(pattern == 0 ? one : FixedType{k, uni(-6, 5), uni(-2, 8), round, ov});
    }
    ProgramBuilder b;
    b.input({H, C}, types);
    const Program p = b.finish();
    const int64_t n = uni(1, 9);
    std::vector<float> x(static_cast<size_t>(n * H * C));
    for (size_t j = 0; j < x.size(); ++j) {
      const FixedType& t = types[j % types.size()];
      // Ties (odd multiples of half a step), values on the grid, and values far outside the range.
      const float step = std::ldexp(1.f, -t.f);
      x[j] = uni(0, 2) == 0 ? step * (static_cast<float>(uni(-300, 300)) + 0.5f)
             : uni(0, 1)    ? std::uniform_real_distribution<float>(-40.f, 40.f)(rng)
                            : step * static_cast<float>(uni(-100, 100));
      // Values the kernel sends to the scalar definition: huge codes (|x 2^f| >= 2^62), subnormals, -0.
      const float special[] = {1e30f, -1e30f, 1e-40f, -1e-40f, -0.f};
      if (uni(0, 15) == 0) x[j] = special[uni(0, 4)];
    }
    const std::vector<int64_t> got = quantize_input(p, x.data(), n);
    int64_t bad = 0;
    for (size_t j = 0; j < x.size(); ++j) {
      const FixedType& t = types[j % types.size()];
      if (t.k + t.i + t.f <= 0) {
        bad += got[j] != 0;
        continue;
      }
      const double xq = quantize_traced(static_cast<double>(x[j]), prepare(t), 0.5, true).value;
      bad += got[j] != to_code(xq, t.f) * (int64_t{1} << (p.input().frac - t.f));
    }
    INFO("trial " << trial << " pattern " << pattern);
    CHECK(bad == 0);
  }
}
