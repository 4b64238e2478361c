// Layers of variational autoencoders and anomaly scores: VaeSampling (the reparameterised latent sample and
// its KL divergence) and SumSquares (the score sum(x^2), e.g. of an encoder's mu, as AXOL1TL computes it).
// Both are parameter-free and deploy: at inference VaeSampling is "take mu", SumSquares an exact integer sum
// of squares of its quantized input.
#include "engine/nn/factories.h"
#include "engine/ops.h"

namespace kiln::nn {

namespace {

// beta * mean over the batch of KL(N(mu, exp(lv)) || N(0, 1)) = -0.5 sum_j (1 + lv_j - mu_j^2 - exp(lv_j)),
// written as 0.5 sum_j (mu_j^2 + exp(lv_j) - 1 - lv_j). mu, lv [B, L] -> [].
Var kl_divergence(const Var& mu, const Var& lv, float beta) {
  const Var per_element = sub(add(square(mu), exp(lv)), add_scalar(lv, 1.f));
  return mul_scalar(sum_all(per_element), 0.5f * beta / static_cast<float>(mu.dim(0)));
}

// Input [2L] = (mu, log-variance), output [L]. Training: z = mu + eps * exp(lv / 2) with eps ~ N(0, 1) drawn
// from the context's rng, and beta * KL added to the context's loss terms. Inference: z = mu, the first L
// inputs, so the deployed model only copies them (no noise, no exp).
class VaeSampling : public Layer {
 public:
  explicit VaeSampling(const Config& c) : beta_(c.get<float>("beta", 1.f)) {
    if (!(beta_ >= 0.f))
      c.fail("beta", "vae_sampling: beta (the weight of the KL divergence) must be >= 0, got " +
                         c.get<std::string>("beta", ""));
  }
  std::string type() const override { return "vae_sampling"; }
  Shape build(const Shape& in, std::mt19937_64&) override {
    if (in.size() != 1 || in[0] < 2 || in[0] % 2 != 0)
      shape_error(in, "needs [2 * latent] features (mu, then the log-variance): an even width >= 2");
    return out_shape_ = {in[0] / 2};
  }
  Var forward(const Var& x, Context& ctx) override {
    const int64_t l = out_shape_[0];
    const Var mu = slice(x, 1, 0, l);
    if (!ctx.training) return mu;
    KILN_CHECK(ctx.rng != nullptr, "vae_sampling in training needs the context's rng");
    const Var lv = slice(x, 1, l, 2 * l);
    if (ctx.aux_losses) ctx.aux_losses->push_back(kl_divergence(mu, lv, beta_));
    Tensor eps(mu.shape());  // [B, L]
    std::normal_distribution<float> normal(0.f, 1.f);
    for (int64_t i = 0; i < eps.size(); ++i) eps[i] = normal(*ctx.rng);
    return add(mu, mul(Var(std::move(eps)), exp(mul_scalar(lv, 0.5f))));
  }

 private:
  float beta_;
};

// y [1] = the sum of squares of every input feature. Slot: input (quantized under HGQ, so that every square
// and the sum are exact fixed-point values: the deployed op computes them in integers).
class SumSquares : public Layer {
 public:
  std::string type() const override { return "sum_squares"; }
  bool has_slot(Slot s) const override { return s == Slot::kInput; }
  Shape build(const Shape& in, std::mt19937_64&) override {
    if (in.empty() || shape_numel(in) < 1) shape_error(in, "needs at least one feature");
    return out_shape_ = {1};
  }
  Var forward(const Var& in, Context& ctx) override {
    const Var x = flatten(through(Slot::kInput, in, ctx));  // [B, n]
    return sum(square(x), 1, true);                         // [B, 1]
  }
};

}  // namespace

LayerPtr make_vae_sampling(const Config& c) {
  check_layer_keys(c, "vae_sampling", {"type", "name", "beta"});
  return std::make_unique<VaeSampling>(c);
}
LayerPtr make_sum_squares(const Config& c) {
  check_layer_keys(c, "sum_squares", {"type", "name"});
  return std::make_unique<SumSquares>();
}

}  // namespace kiln::nn
