// Sequence layers: token Embedding, learned PositionalEmbedding, MultiHeadAttention (self-attention) and a
// pre-norm transformer encoder block. Inputs are [T, D] per sample (Embedding: [T] token ids).
#include <cmath>

#include "engine/nn/activation.h"
#include "engine/nn/factories.h"
#include "engine/ops.h"

namespace kiln::nn {

namespace {

class Embedding : public Layer {
 public:
  explicit Embedding(const Config& c) : vocab_(c.require<int>("vocab_size")), dim_(c.require<int>("dim")) {
    if (vocab_ < 1) c.fail("vocab_size", "vocab_size must be >= 1");
    if (dim_ < 1) c.fail("dim", "dim must be >= 1");
  }
  std::string type() const override { return "embedding"; }
  Shape build(const Shape& in, std::mt19937_64& rng) override {
    add_param("table", init_tensor({vocab_, dim_}, Init::kGlorotUniform, vocab_, dim_, rng), false);
    out_shape_ = in;
    out_shape_.push_back(dim_);
    return out_shape_;
  }
  Var forward(const Var& x, Context&) override { return embedding_lookup(x.value(), params_[0].var); }

 private:
  int64_t vocab_, dim_;
};

class PositionalEmbedding : public Layer {
 public:
  std::string type() const override { return "positional_embedding"; }
  // Quantized (HGQ): the input and the table (weight slot), added exactly.
  bool has_slot(Slot s) const override { return s == Slot::kInput || s == Slot::kWeight; }
  Shape build(const Shape& in, std::mt19937_64& rng) override {
    if (in.size() != 2) shape_error(in, "needs [sequence, features]");
    std::normal_distribution<float> n(0.f, 0.02f);
    Tensor t(in);
    for (int64_t i = 0; i < t.size(); ++i) t[i] = n(rng);
    add_param("table", t, false);
    return out_shape_ = in;
  }
  Var forward(const Var& x, Context& ctx) override {
    return add(through(Slot::kInput, x, ctx), through(Slot::kWeight, params_[0].var, ctx));
  }
};

// Self-attention weights and forward, shared by the MultiHeadAttention layer and the transformer block.
struct MhaWeights {
  int64_t heads = 1, key_dim = 0;
  bool causal = false;
  Parameter *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo;

  Var forward(const Var& x) const {
    int64_t b = x.dim(0), t = x.dim(1);
    auto split = [&](const Var& w, const Var& bias) {  // [B, T, H*Dk] -> [B, H, T, Dk]
      return transpose(reshape(linear(x, w, bias), {b, t, heads, key_dim}), {0, 2, 1, 3});
    };
    Tensor mask = causal ? causal_mask(t) : Tensor();
    Var o = scaled_dot_product_attention(split(wq->var, bq->var), split(wk->var, bk->var),
                                         split(wv->var, bv->var), causal ? &mask : nullptr);
    Var merged = reshape(transpose(o, {0, 2, 1, 3}), {b, t, heads * key_dim});
    return linear(merged, wo->var, bo->var);
  }
};

// Adds q/k/v/o projections named "<prefix>query.weight" etc. to `params` (which must not reallocate
// afterwards: callers reserve).
MhaWeights add_mha(std::vector<Parameter>& params, const std::string& prefix, int64_t d, int64_t heads,
                   int64_t key_dim, bool causal, std::mt19937_64& rng) {
  MhaWeights m;
  m.heads = heads, m.key_dim = key_dim, m.causal = causal;
  int64_t hd = heads * key_dim;
  auto add = [&](const std::string& n, Shape s, bool decay, int64_t fi, int64_t fo) {
    Tensor v = decay ? init_tensor(s, Init::kGlorotUniform, fi, fo, rng) : Tensor(s);
    params.push_back({prefix + n, Var(std::move(v), true), decay, Tensor()});
    return &params.back();
  };
  m.wq = add("query.weight", {d, hd}, true, d, hd), m.bq = add("query.bias", {hd}, false, 0, 0);
  m.wk = add("key.weight", {d, hd}, true, d, hd), m.bk = add("key.bias", {hd}, false, 0, 0);
  m.wv = add("value.weight", {d, hd}, true, d, hd), m.bv = add("value.bias", {hd}, false, 0, 0);
  m.wo = add("output.weight", {hd, d}, true, hd, d), m.bo = add("output.bias", {d}, false, 0, 0);
  return m;
}

class MultiHeadAttention : public Layer {
 public:
  explicit MultiHeadAttention(const Config& c)
      : heads_(c.require<int>("heads")),
        key_dim_(c.get<int>("key_dim", 0)),
        causal_(c.get<bool>("causal", false)) {
    if (heads_ < 1) c.fail("heads", "heads must be >= 1");
  }
  std::string type() const override { return "multi_head_attention"; }
  Shape build(const Shape& in, std::mt19937_64& rng) override {
    if (in.size() != 2) shape_error(in, "needs [sequence, features]");
    int64_t d = in[1], kd = key_dim_ ? key_dim_ : d / heads_;
    if (kd < 1) shape_error(in, "has fewer features than heads (" + std::to_string(heads_) + ")");
    params_.reserve(8);
    w_ = add_mha(params_, name_ + ".", d, heads_, kd, causal_, rng);
    return out_shape_ = in;
  }
  Var forward(const Var& x, Context&) override { return w_.forward(x); }

 private:
  int64_t heads_, key_dim_;
  bool causal_;
  MhaWeights w_;
};

// Scaled dot-product attention over a fused projection: x [T, 3D] holds Q, K and V side by side (a Dense with
// 3D units computes them), heads split each into D / heads features; y [T, D] is the heads' contexts side by
// side (an output Dense follows). No parameters: written this way, a transformer is a chain of deployable
// layers. Slots: input (Q, K, V as the hardware holds them) and activation (the softmax of the scaled scores,
// replaced by a table under HGQ: it gets the raw scores Q K^T and applies the scale itself).
class Attention : public Layer {
 public:
  explicit Attention(const Config& c) : heads_(c.require<int>("heads")) {
    if (heads_ < 1) c.fail("heads", "heads must be >= 1");
  }
  std::string type() const override { return "attention"; }
  bool has_slot(Slot s) const override { return s == Slot::kInput || s == Slot::kActivation; }
  int64_t heads() const override { return heads_; }
  Shape build(const Shape& in, std::mt19937_64&) override {
    if (in.size() != 2 || in[1] % (3 * heads_) != 0)
      shape_error(in, "needs [sequence, 3 * features] (Q, K, V side by side) with features divisible by " +
                          std::to_string(heads_) + " heads");
    return out_shape_ = {in[0], in[1] / 3};
  }
  Var forward(const Var& in, Context& ctx) override {
    const Var x = through(Slot::kInput, in, ctx);
    const int64_t b = x.dim(0), t = x.dim(1), d = x.dim(2) / 3, dh = d / heads_;
    auto head_major = [&](int part) {  // [B, T, D] slice -> [B * H, T, dh]
      Var v = reshape(slice(x, 2, part * d, (part + 1) * d), {b, t, heads_, dh});
      return reshape(transpose(v, {0, 2, 1, 3}), {b * heads_, t, dh});
    };
    const Var q = head_major(0), k = head_major(1), v = head_major(2);
    const Var scores = matmul(q, transpose(k, {0, 2, 1}));  // [B * H, T, T]
    const Var p = transform(Slot::kActivation)
                      ? through(Slot::kActivation, scores, ctx)
                      : softmax(mul_scalar(scores, 1.f / std::sqrt(static_cast<float>(dh))), -1);
    const Var y = reshape(matmul(p, v), {b, heads_, t, dh});
    return reshape(transpose(y, {0, 2, 1, 3}), {b, t, d});
  }

 private:
  int64_t heads_;
};

// Pre-norm encoder block: h = x + Drop(MHA(LN1(x))); y = h + Drop(W2 act(W1 LN2(h))).
class TransformerBlock : public Layer {
 public:
  explicit TransformerBlock(const Config& c)
      : heads_(c.require<int>("heads")),
        ff_dim_(c.require<int>("ff_dim")),
        rate_(c.get<float>("dropout", 0.f)),
        causal_(c.get<bool>("causal", false)),
        eps_(c.get<float>("epsilon", 1e-5f)),
        act_(parse_activation(c, "activation")) {
    if (!c.has("activation")) act_.name = "gelu";
    if (heads_ < 1) c.fail("heads", "heads must be >= 1");
    if (ff_dim_ < 1) c.fail("ff_dim", "ff_dim must be >= 1");
    if (!(rate_ >= 0.f && rate_ < 1.f)) c.fail("dropout", "dropout must be in [0, 1)");
  }
  std::string type() const override { return "transformer_block"; }
  Shape build(const Shape& in, std::mt19937_64& rng) override {
    if (in.size() != 2) shape_error(in, "needs [sequence, features]");
    int64_t d = in[1];
    if (d % heads_ != 0)
      shape_error(in, "has " + std::to_string(d) + " features, not divisible by " + std::to_string(heads_) +
                          " heads");
    params_.reserve(16);
    const std::string p = name_ + ".";
    auto add = [&](const std::string& n, Tensor v, bool decay) {
      params_.push_back({p + n, Var(std::move(v), true), decay, Tensor()});
    };
    add("norm1.gamma", Tensor({d}, 1.f), false);
    add("norm1.beta", Tensor({d}), false);
    mha_ = add_mha(params_, p + "attention.", d, heads_, d / heads_, causal_, rng);
    add("norm2.gamma", Tensor({d}, 1.f), false);
    add("norm2.beta", Tensor({d}), false);
    add("ff1.weight", init_tensor({d, ff_dim_}, Init::kGlorotUniform, d, ff_dim_, rng), true);
    add("ff1.bias", Tensor({ff_dim_}), false);
    add("ff2.weight", init_tensor({ff_dim_, d}, Init::kGlorotUniform, ff_dim_, d, rng), true);
    add("ff2.bias", Tensor({d}), false);
    return out_shape_ = in;
  }
  Var forward(const Var& x, Context& ctx) override {
    auto drop = [&](const Var& v) { return ctx.training && rate_ > 0.f ? dropout(v, rate_, *ctx.rng) : v; };
    Var h = add(x, drop(mha_.forward(layer_norm(x, params_[0].var, params_[1].var, eps_))));
    Var n2 = layer_norm(h, params_[10].var, params_[11].var, eps_);
    Var ff =
        linear(act_.apply(linear(n2, params_[12].var, params_[13].var)), params_[14].var, params_[15].var);
    return add(h, drop(ff));
  }

 private:
  int64_t heads_, ff_dim_;
  float rate_;
  bool causal_;
  float eps_;
  Activation act_;
  MhaWeights mha_;
};

}  // namespace

LayerPtr make_embedding(const Config& c) {
  c.check_unused({"type", "name", "vocab_size", "dim"});
  return std::make_unique<Embedding>(c);
}
LayerPtr make_positional_embedding(const Config& c) {
  c.check_unused({"type", "name"});
  return std::make_unique<PositionalEmbedding>();
}
LayerPtr make_multi_head_attention(const Config& c) {
  c.check_unused({"type", "name", "heads", "key_dim", "causal"});
  return std::make_unique<MultiHeadAttention>(c);
}
LayerPtr make_attention(const Config& c) {
  c.check_unused({"type", "name", "heads"});
  return std::make_unique<Attention>(c);
}
LayerPtr make_transformer_block(const Config& c) {
  c.check_unused({"type", "name", "heads", "ff_dim", "dropout", "causal", "epsilon", "activation", "alpha"});
  return std::make_unique<TransformerBlock>(c);
}

}  // namespace kiln::nn
