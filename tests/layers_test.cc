// Every layer type: output shapes (built and actual), parameter names and counts (checked against
// Keras' summary() for the same layers), bad shapes naming the layer, and config errors.
#include "engine/nn/model.h"
#include "tests/gradcheck.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::nn;

namespace {

std::unique_ptr<Model> build(const std::string& layers_yaml, const Shape& in) {
  return Model::from_yaml("layers:\n" + layers_yaml, in, 1);
}

// Builds a one-layer model, runs a batch of 2 through it, and returns {output shape, param count}.
std::pair<Shape, int64_t> probe(const std::string& layer, const Shape& in, bool training = false) {
  auto m = build("  - " + layer + "\n", in);
  Shape bs{2};
  bs.insert(bs.end(), in.begin(), in.end());
  std::mt19937_64 rng(1);
  Tensor x = kiln::testing::random_tensor(bs, rng);
  Context ctx{training, &rng};
  Var y = m->forward(Var(x), ctx);
  Shape expect{2};
  expect.insert(expect.end(), m->output_shape().begin(), m->output_shape().end());
  CHECK(y.shape() == expect);  // build() and forward() agree
  return {m->output_shape(), m->num_params()};
}

}  // namespace

TEST_CASE("dense, activations, dropout, flatten, reshape") {
  CHECK(probe("{type: dense, units: 5}", {16}) == std::make_pair(Shape{5}, int64_t{85}));
  CHECK(probe("{type: dense, units: 5, use_bias: false}", {16}) == std::make_pair(Shape{5}, int64_t{80}));
  CHECK(probe("{type: dense, units: 3}", {4, 7}).first == Shape{4, 3});  // on the last axis, as Keras
  for (const char* a : {"relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax"})
    CHECK(probe(std::string("{type: ") + a + "}", {3, 4}).first == Shape{3, 4});
  CHECK(probe("{type: activation, activation: tanh}", {6}).first == Shape{6});
  CHECK(probe("{type: dropout, rate: 0.5}", {6}, true).first == Shape{6});
  CHECK(probe("{type: flatten}", {3, 4, 2}).first == Shape{24});
  CHECK(probe("{type: reshape, shape: [4, -1]}", {8}).first == Shape{4, 2});
}

TEST_CASE("convolutions and pooling (Keras parameter counts)") {
  CHECK(probe("{type: conv2d, filters: 8, kernel_size: 3}", {28, 28, 1}) ==
        std::make_pair(Shape{26, 26, 8}, int64_t{80}));
  CHECK(probe("{type: conv2d, filters: 4, kernel_size: [3, 2], strides: 2, padding: same}", {7, 6, 3}) ==
        std::make_pair(Shape{4, 3, 4}, int64_t{3 * 2 * 3 * 4 + 4}));
  CHECK(probe("{type: conv1d, filters: 6, kernel_size: 5}", {20, 2}) ==
        std::make_pair(Shape{16, 6}, int64_t{66}));
  CHECK(probe("{type: depthwise_conv2d, kernel_size: 3, padding: same}", {5, 5, 4}) ==
        std::make_pair(Shape{5, 5, 4}, int64_t{40}));
  CHECK(probe("{type: max_pool2d, pool_size: 2}", {7, 6, 3}).first == Shape{3, 3, 3});
  CHECK(probe("{type: avg_pool2d, pool_size: 2, padding: same}", {7, 6, 3}).first == Shape{4, 3, 3});
  CHECK(probe("{type: max_pool1d, pool_size: 3, strides: 1}", {10, 2}).first == Shape{8, 2});
  CHECK(probe("{type: avg_pool1d}", {10, 2}).first == Shape{5, 2});
  CHECK(probe("{type: global_avg_pool}", {5, 5, 4}).first == Shape{4});
  CHECK(probe("{type: global_avg_pool}", {9, 3}).first == Shape{3});
}

TEST_CASE("normalisation layers: parameters and running statistics") {
  CHECK(probe("{type: batch_norm}", {5, 3}, true) == std::make_pair(Shape{5, 3}, int64_t{6}));
  CHECK(probe("{type: layer_norm}", {5, 3}) == std::make_pair(Shape{5, 3}, int64_t{6}));
  auto m = build("  - {type: batch_norm, name: bn, momentum: 0.5}\n", {2});
  auto bufs = m->buffers();
  REQUIRE(bufs.size() == 2);
  CHECK(bufs[0].name == "bn.running_mean");
  std::mt19937_64 rng(1);
  Context train{true, &rng};
  m->forward(Var(Tensor({2, 2}, {1, 2, 3, 4})), train);
  CHECK((*bufs[0].tensor)[0] == doctest::Approx(1.f));   // 0.5 * 0 + 0.5 * mean(1, 3)
  CHECK((*bufs[1].tensor)[0] == doctest::Approx(1.5f));  // 0.5 * 1 + 0.5 * unbiased var 2
}

TEST_CASE("sequence layers: embedding, positional embedding, attention, transformer block") {
  auto m = build("  - {type: embedding, vocab_size: 10, dim: 8}\n  - {type: positional_embedding}\n", {5});
  CHECK(m->output_shape() == Shape{5, 8});
  CHECK(m->num_params() == 80 + 40);
  Context ctx;
  Var y = m->forward(Var(Tensor({1, 5}, {0, 1, 9, 3, 3})), ctx);
  CHECK(y.shape() == Shape{1, 5, 8});
  CHECK_THROWS_AS(m->forward(Var(Tensor({1, 5}, {0, 1, 10, 3, 3})), ctx), InputError);
  // Keras MultiHeadAttention(num_heads=2, key_dim=4) on 8 features: 4 * (8*8 + 8) = 288 parameters.
  CHECK(probe("{type: multi_head_attention, heads: 2}", {5, 8}) == std::make_pair(Shape{5, 8}, int64_t{288}));
  CHECK(probe("{type: multi_head_attention, heads: 2, key_dim: 3, causal: true}", {5, 8}).second ==
        3 * (8 * 6 + 6) + 6 * 8 + 8);
  // Block: attention 288 + two layer norms 32 + FF 8*16+16 + 16*8+8 = 600.
  CHECK(probe("{type: transformer_block, heads: 2, ff_dim: 16, dropout: 0.1}", {5, 8}, true) ==
        std::make_pair(Shape{5, 8}, int64_t{600}));
}

TEST_CASE(
    "attention over a fused Q, K, V: equals scaled dot-product attention per head; gradients; shape errors") {
  auto m = build("  - {type: attention, heads: 2}\n", {3, 12});  // T 3, D 4, 2 heads of 2
  CHECK(m->output_shape() == Shape{3, 4});
  CHECK(m->parameters().empty());
  std::mt19937_64 rng(5);
  Tensor x = kiln::testing::random_tensor({2, 3, 12}, rng);
  Context ctx;
  Var y = m->forward(Var(x), ctx);
  // The reference: per sample and head, softmax(q k^T / sqrt(2)) v, written out.
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t i = 0; i < 3; ++i) {
        double s[3], z = 0;
        for (int64_t j = 0; j < 3; ++j) {
          s[j] = 0;
          for (int64_t c = 0; c < 2; ++c)
            s[j] += x[(b * 3 + i) * 12 + h * 2 + c] * x[(b * 3 + j) * 12 + 4 + h * 2 + c];
          s[j] = std::exp(s[j] / std::sqrt(2.0));
          z += s[j];
        }
        for (int64_t c = 0; c < 2; ++c) {
          double want = 0;
          for (int64_t j = 0; j < 3; ++j) want += s[j] / z * x[(b * 3 + j) * 12 + 8 + h * 2 + c];
          CHECK(y.value()[(b * 3 + i) * 4 + h * 2 + c] == doctest::Approx(want).epsilon(1e-5));
        }
      }
  auto f = [&](const std::vector<Var>& v) {
    Context c;
    return m->forward(v[0], c);
  };
  CHECK(kiln::testing::max_grad_error(f, {x}, 3e-3f) < 1e-2);
  CHECK(kiln::testing::what_of([] {
          build("  - {type: attention, heads: 2}\n", {3, 10});
        }).find("3 * features") != std::string::npos);
}

TEST_CASE("residual blocks add the input and prefix their layers' names") {
  auto m = build("  - {type: residual, name: res, layers: [{type: dense, units: 4}, {type: relu}]}\n", {4});
  auto params = m->parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0]->name == "res.dense_1.weight");
  params[0]->var.value().zero();
  params[1]->var.value().zero();
  Context ctx;
  Var y = m->forward(Var(Tensor({1, 4}, {1, -2, 3, 4})), ctx);  // body gives 0: y == x
  CHECK(y.value().storage() == std::vector<float>{1, -2, 3, 4});
  CHECK(kiln::testing::what_of([] {
          build("  - {type: residual, layers: [{type: dense, units: 3}]}\n", {4});
        }).find("residual") != std::string::npos);
}

TEST_CASE("gradients flow through a built model (finite differences on the input)") {
  auto m = build(
      "  - {type: conv1d, filters: 3, kernel_size: 2}\n  - {type: layer_norm}\n  - {type: flatten}\n"
      "  - {type: dense, units: 2, activation: tanh}\n",
      {4, 2});
  auto f = [&](const std::vector<Var>& v) {
    Context ctx;
    return m->forward(v[0], ctx);
  };
  std::mt19937_64 rng(4);
  CHECK(kiln::testing::max_grad_error(f, {kiln::testing::random_tensor({2, 4, 2}, rng)}, 3e-3f) < 1e-2);
}

TEST_CASE("shape mismatches name the layer and both shapes") {
  std::string e = kiln::testing::what_of(
      [] { build("  - {type: conv2d, name: c1, filters: 2, kernel_size: 3}\n", {16}); });
  CHECK(e.find("layer 'c1' (conv2d)") != std::string::npos);
  CHECK(e.find("[16]") != std::string::npos);
  e = kiln::testing::what_of([] { build("  - {type: conv2d, filters: 2, kernel_size: 5}\n", {3, 3, 1}); });
  CHECK(e.find("smaller than the kernel") != std::string::npos);
  e = kiln::testing::what_of([] { build("  - {type: transformer_block, heads: 3, ff_dim: 4}\n", {5, 8}); });
  CHECK(e.find("not divisible by 3 heads") != std::string::npos);
  auto m = build("  - {type: dense, units: 2}\n", {3});
  Context ctx;
  e = kiln::testing::what_of([&] { m->forward(Var(Tensor({4, 5})), ctx); });
  CHECK(e.find("got [4, 5]") != std::string::npos);
  CHECK(e.find("[batch, 3]") != std::string::npos);
}

TEST_CASE("config errors name the key and line") {
  CHECK(kiln::testing::what_of([] {
          build("  - {type: dense, unit: 4}\n", {3});
        }).find("unknown key 'unit'") != std::string::npos);
  CHECK(kiln::testing::what_of([] {
          build("  - {type: dense, unit: 4}\n", {3});
        }).find("did you mean 'units'") != std::string::npos);
  CHECK(kiln::testing::what_of([] {
          build("  - {type: dense}\n", {3});
        }).find("missing required key 'units'") != std::string::npos);
  CHECK(kiln::testing::what_of([] {
          build("  - {type: dense, units: many}\n", {3});
        }).find("expects an integer, got 'many'") != std::string::npos);
  CHECK(kiln::testing::what_of([] {
          build("  - {type: dens, units: 2}\n", {3});
        }).find("did you mean 'dense'") != std::string::npos);
  CHECK(kiln::testing::what_of([] {
          build("  - {type: dense, units: 2, activation: rellu}\n", {3});
        }).find("unknown activation 'rellu'") != std::string::npos);
  CHECK(kiln::testing::what_of([] {
          build(
              "  - {type: dense, units: 2}\n  - {type: conv2d, filters: 2, kernel_size: 3, padding: full}\n",
              {3});
        }).find(":3:") != std::string::npos);  // the line of the bad key
  CHECK(kiln::testing::what_of([] {
          build("  - {type: dense, name: a, units: 2}\n  - {type: dense, name: a, units: 2}\n", {3});
        }).find("'a' is used twice") != std::string::npos);
  CHECK(kiln::testing::what_of([] {
          Model::from_yaml("layerz: []", {3}, 1);
        }).find("did you mean 'layers'") != std::string::npos);
}

TEST_CASE("initialisers follow the seed and the Keras limits") {
  auto a = build("  - {type: dense, units: 50, kernel_initializer: he_uniform}\n", {20});
  auto b = build("  - {type: dense, units: 50, kernel_initializer: he_uniform}\n", {20});
  CHECK(a->parameters()[0]->var.value().storage() == b->parameters()[0]->var.value().storage());
  float limit = std::sqrt(6.f / 20.f), mx = 0.f;
  for (float v : a->parameters()[0]->var.value().storage()) mx = std::max(mx, std::fabs(v));
  CHECK(mx <= limit);
  CHECK(mx > 0.9f * limit);
  auto z = build("  - {type: dense, units: 3, kernel_initializer: zeros}\n", {2});
  for (float v : z->parameters()[0]->var.value().storage()) CHECK(v == 0.f);
}

namespace {

// A training context whose layers draw from `rng` and add their loss terms to `aux`.
Context training_context(std::mt19937_64* rng, std::vector<Var>* aux) {
  Context c;
  c.training = true, c.rng = rng, c.aux_losses = aux;
  return c;
}

}  // namespace

TEST_CASE("vae_sampling: z = mu at inference, mu + eps sigma and beta * KL in training; exact gradients") {
  auto m = build("  - {type: vae_sampling, name: z, beta: 0.5}\n", {4});  // mu [2], log-variance [2]
  CHECK(m->output_shape() == Shape{2});
  CHECK(m->parameters().empty());
  const Tensor x({2, 4}, {1.f, 0.f, 0.f, std::log(2.f), -0.5f, 2.f, 0.3f, -1.f});
  {  // inference: the first half exactly, and no loss even when the caller collects them
    std::vector<Var> aux;
    Context ctx;
    ctx.aux_losses = &aux;
    CHECK(m->forward(Var(x), ctx).value().storage() == std::vector<float>{1.f, 0.f, -0.5f, 2.f});
    CHECK(aux.empty());
  }
  // Training: one loss term, 0.5 * mean over the batch of 0.5 sum_j (mu^2 + exp(lv) - 1 - lv).
  std::mt19937_64 rng(3);
  std::vector<Var> aux;
  Context train = training_context(&rng, &aux);
  m->forward(Var(x), train);
  REQUIRE(aux.size() == 1);
  auto kl = [](double mu, double lv) { return 0.5 * (mu * mu + std::exp(lv) - 1 - lv); };
  const double want = 0.5 * (kl(1, 0) + kl(0, std::log(2.0)) + kl(-0.5, 0.3) + kl(2, -1)) / 2;
  CHECK(aux[0].shape() == Shape{});
  CHECK(aux[0].value()[0] == doctest::Approx(want).epsilon(1e-6));
  // The samples: mean mu and standard deviation exp(lv / 2) over many rows of (0.5, -1 | log 4, 0).
  const int64_t n = 20000;
  Tensor rows({n, 4});
  for (int64_t r = 0; r < n; ++r)
    rows[r * 4] = 0.5f, rows[r * 4 + 1] = -1.f, rows[r * 4 + 2] = std::log(4.f), rows[r * 4 + 3] = 0.f;
  Tensor z = m->forward(Var(rows), train).value();
  for (int64_t j = 0; j < 2; ++j) {
    double s = 0, s2 = 0;
    for (int64_t r = 0; r < n; ++r) s += z[r * 2 + j], s2 += z[r * 2 + j] * z[r * 2 + j];
    const double mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
    CHECK(mean == doctest::Approx(j == 0 ? 0.5 : -1.0).epsilon(0.05));
    CHECK(sd == doctest::Approx(j == 0 ? 2.0 : 1.0).epsilon(0.03));
  }
  // Gradients: of the KL term, and of the sampled path with the same eps in every evaluation (the rng
  // restarts from one seed).
  std::mt19937_64 xr(8);
  const Tensor xg = kiln::testing::random_tensor({3, 4}, xr);
  auto kl_term = [&](const std::vector<Var>& v) {
    std::mt19937_64 r(11);
    std::vector<Var> terms;
    Context c = training_context(&r, &terms);
    m->forward(v[0], c);
    return terms.at(0);
  };
  CHECK(kiln::testing::max_grad_error(kl_term, {xg}, 1e-3f) < 1e-2);
  auto sampled = [&](const std::vector<Var>& v) {
    std::mt19937_64 r(11);
    std::vector<Var> terms;
    Context c = training_context(&r, &terms);
    return m->forward(v[0], c);
  };
  CHECK(kiln::testing::max_grad_error(sampled, {xg}, 1e-3f) < 1e-2);
}

TEST_CASE("vae_sampling: odd or multi-axis inputs, a negative beta and unknown keys name the layer") {
  std::string e = kiln::testing::what_of([] { build("  - {type: vae_sampling, name: z}\n", {5}); });
  CHECK(e.find("layer 'z' (vae_sampling)") != std::string::npos);
  CHECK(e.find("[5]") != std::string::npos);
  CHECK(e.find("even") != std::string::npos);
  e = kiln::testing::what_of([] { build("  - {type: vae_sampling}\n", {3, 4}); });
  CHECK(e.find("(vae_sampling): input shape [3, 4]") != std::string::npos);
  e = kiln::testing::what_of([] { build("  - {type: vae_sampling, beta: -1}\n", {4}); });
  CHECK(e.find("vae_sampling: beta") != std::string::npos);
  CHECK(e.find("got -1") != std::string::npos);
  e = kiln::testing::what_of([] { build("  - {type: vae_sampling, name: z, betta: 1}\n", {4}); });
  CHECK(e.find("unknown key 'betta' in 'layers' item 1 (vae_sampling 'z'); did you mean 'beta'?") !=
        std::string::npos);
  CHECK(e.find('\n') == std::string::npos);
}

TEST_CASE("upsample1d and upsample2d: nearest neighbour, gradients summed over each block, errors") {
  CHECK(probe("{type: upsample2d}", {3, 2, 4}) == std::make_pair(Shape{6, 4, 4}, int64_t{0}));
  CHECK(probe("{type: upsample2d, size: [2, 3]}", {3, 2, 4}).first == Shape{6, 6, 4});
  CHECK(probe("{type: upsample1d, size: 3}", {5, 2}).first == Shape{15, 2});
  CHECK(probe("{type: upsample1d, size: [1]}", {5, 2}).first == Shape{5, 2});
  auto m = build("  - {type: upsample2d, size: [2, 3]}\n", {2, 3, 2});
  std::mt19937_64 rng(6);
  const Tensor x = kiln::testing::random_tensor({2, 2, 3, 2}, rng);
  Context ctx;
  const Tensor y = m->forward(Var(x), ctx).value();
  REQUIRE(y.shape() == Shape{2, 4, 9, 2});
  int64_t bad = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t oh = 0; oh < 4; ++oh)
      for (int64_t ow = 0; ow < 9; ++ow)
        for (int64_t c = 0; c < 2; ++c)
          bad += y[((b * 4 + oh) * 9 + ow) * 2 + c] != x[((b * 2 + oh / 2) * 3 + ow / 3) * 2 + c];
  CHECK(bad == 0);
  // The gradient of pixel (h, w) is the sum over its 2 x 3 block (the weights of max_grad_error differ).
  auto f = [&](const std::vector<Var>& v) {
    Context c;
    return m->forward(v[0], c);
  };
  CHECK(kiln::testing::max_grad_error(f, {x}) < 1e-3);
  auto m1 =
      build("  - {type: upsample1d, size: 2}\n  - {type: conv1d, filters: 2, kernel_size: 3}\n", {4, 3});
  auto f1 = [&](const std::vector<Var>& v) {
    Context c;
    return m1->forward(v[0], c);
  };
  CHECK(kiln::testing::max_grad_error(f1, {kiln::testing::random_tensor({2, 4, 3}, rng)}, 3e-3f) < 1e-2);
  // Errors: the layer and the key or shape.
  std::string e = kiln::testing::what_of([] { build("  - {type: upsample2d, name: up}\n", {8, 3}); });
  CHECK(e.find("layer 'up' (upsample2d): input shape [8, 3] needs [height, width, channels]") !=
        std::string::npos);
  e = kiln::testing::what_of([] { build("  - {type: upsample1d}\n", {8}); });
  CHECK(e.find("(upsample1d): input shape [8] needs [length, channels]") != std::string::npos);
  e = kiln::testing::what_of([] { build("  - {type: upsample2d, size: [2, 2, 2]}\n", {4, 4, 1}); });
  CHECK(e.find("upsample2d: size must be an integer or a list of 2 integers, got 3") != std::string::npos);
  e = kiln::testing::what_of([] { build("  - {type: upsample1d, size: 0}\n", {4, 1}); });
  CHECK(e.find("upsample1d: size must be >= 1, got 0") != std::string::npos);
  e = kiln::testing::what_of([] { build("  - {type: upsample2d, sizes: 2}\n", {4, 4, 1}); });
  CHECK(e.find("unknown key 'sizes' in 'layers' item 1 (upsample2d); did you mean 'size'?") !=
        std::string::npos);
}

TEST_CASE("sum_squares: one output per sample, the sum of every feature squared; gradients 2x") {
  CHECK(probe("{type: sum_squares}", {3, 4}) == std::make_pair(Shape{1}, int64_t{0}));
  auto m = build("  - {type: sum_squares}\n", {3});
  Context ctx;
  CHECK(m->forward(Var(Tensor({2, 3}, {1, -2, 3, 0.5f, 0, -0.25f})), ctx).value().storage() ==
        std::vector<float>{14.f, 0.3125f});
  auto m2 = build("  - {type: sum_squares}\n", {2, 3});
  auto f = [&](const std::vector<Var>& v) {
    Context c;
    return m2->forward(v[0], c);
  };
  std::mt19937_64 rng(2);
  CHECK(kiln::testing::max_grad_error(f, {kiln::testing::random_tensor({3, 2, 3}, rng)}, 1e-3f) < 1e-2);
  const std::string e =
      kiln::testing::what_of([] { build("  - {type: sum_squares, name: s, axis: 1}\n", {3}); });
  CHECK(e.find("unknown key 'axis' in 'layers' item 1 (sum_squares 's')") != std::string::npos);
}
