// Every differentiable op of the engine. Each is a free function returning a Var; its backward is written
// beside its forward in the .cc named in the section header. Shapes: B batch, T sequence, C channels,
// H/W height/width, F filters, K kernel size. Layouts are channels-last (as Keras and hls4ml).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "engine/autograd.h"

namespace kiln {

// ---- elementwise.cc: numpy broadcasting for binary ops -----------------------------------------------
Shape broadcast_shapes(const Shape& a, const Shape& b);  // throws ShapeError naming both shapes
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var neg(const Var& a);
Var add_scalar(const Var& a, float s);
Var mul_scalar(const Var& a, float s);
Var exp(const Var& a);
Var log(const Var& a);
Var sqrt(const Var& a);
Var abs(const Var& a);
Var square(const Var& a);
Var clamp(const Var& a, float lo, float hi);  // gradient 1 strictly inside (lo, hi), 0 outside

// ---- elementwise.cc (unary maps) and softmax.cc
// -----------------------------------------------------------------------------------
Var relu(const Var& a);
Var leaky_relu(const Var& a, float slope = 0.3f);  // Keras' default slope
Var sigmoid(const Var& a);
Var tanh(const Var& a);
Var gelu(const Var& a);  // exact: x * Phi(x)
Var softmax(const Var& a, int axis = -1);
Var log_softmax(const Var& a, int axis = -1);

// ---- reduce.cc ---------------------------------------------------------------------------------------
Var sum(const Var& a, int axis, bool keepdim = false);
Var mean(const Var& a, int axis, bool keepdim = false);
Var max(const Var& a, int axis, bool keepdim = false);  // gradient to the first maximum
Var sum_all(const Var& a);                              // shape [] (0-d)
Var mean_all(const Var& a);

// ---- shape.cc ----------------------------------------------------------------------------------------
Var reshape(const Var& a, const Shape& shape);  // one dim may be -1
Var flatten(const Var& a);                      // [B, ...] -> [B, prod(...)]
Var transpose(const Var& a, const std::vector<int>& perm);
Var concat(const std::vector<Var>& xs, int axis);
Var slice(const Var& a, int axis, int64_t start, int64_t stop);  // [start, stop) along axis

// ---- matmul.cc ---------------------------------------------------------------------------------------
// a [..., M, K] x b [K, N] -> [..., M, N]   or   a [B, M, K] x b [B, K, N] -> [B, M, N].
Var matmul(const Var& a, const Var& b);
// x [..., K] W [K, N] (+ b [N]) -> [..., N]; the Dense layer's fused op (bias may be undefined).
Var linear(const Var& x, const Var& w, const Var& b);

// ---- conv.cc -----------------------------------------------------------------------------------------
enum class Padding { kValid, kSame };  // "same" pads as TensorFlow: the extra row/column goes at the end
int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, Padding pad);
int64_t conv_pad_before(int64_t in, int64_t kernel, int64_t stride, Padding pad);
// x [B, H, W, C], w [KH, KW, C, F], b [F] or undefined -> [B, OH, OW, F]. relu = true fuses relu() into the
// op (the same values and gradients, one pass fewer over the output each way).
Var conv2d(const Var& x, const Var& w, const Var& b, int stride_h, int stride_w, Padding pad,
           bool relu = false);
// x [B, L, C], w [K, C, F], b [F] or undefined -> [B, OL, F]
Var conv1d(const Var& x, const Var& w, const Var& b, int stride, Padding pad, bool relu = false);
// x [B, H, W, C], w [KH, KW, C], b [C] or undefined -> [B, OH, OW, C] (depth multiplier 1)
Var depthwise_conv2d(const Var& x, const Var& w, const Var& b, int stride_h, int stride_w, Padding pad);

// ---- pool.cc -----------------------------------------------------------------------------------------
// x [B, H, W, C] -> [B, OH, OW, C]. Max pads with -inf; average divides by the non-padded count.
Var max_pool2d(const Var& x, int pool_h, int pool_w, int stride_h, int stride_w, Padding pad);
Var avg_pool2d(const Var& x, int pool_h, int pool_w, int stride_h, int stride_w, Padding pad);
// A 2-d pool's window and padding, for a transform that computes its output and the pool over it in one op
// (nn::Transform::apply_max_pool2d).
struct PoolWindow2d {
  int pool_h, pool_w, stride_h, stride_w;
  Padding pad;
};
// x [B, L, C] -> [B, OL, C]
Var max_pool1d(const Var& x, int pool, int stride, Padding pad);
Var avg_pool1d(const Var& x, int pool, int stride, Padding pad);

// ---- upsample.cc -------------------------------------------------------------------------------------
// Nearest-neighbour upsampling (Keras UpSampling2D/1D): every pixel becomes a block of copies, the backward
// sums each block's gradients into its pixel. x [B, H, W, C] -> [B, H * size_h, W * size_w, C].
Var upsample2d(const Var& x, int size_h, int size_w);
// x [B, L, C] -> [B, L * size, C]
Var upsample1d(const Var& x, int size);

// ---- norm.cc -----------------------------------------------------------------------------------------
// Batch norm over every axis but the last (channels). In training, normalises with the batch's
// statistics and updates running_mean/var in place: r = momentum * r + (1 - momentum) * batch (Keras).
Var batch_norm_train(const Var& x, const Var& gamma, const Var& beta, Tensor& running_mean,
                     Tensor& running_var, float momentum, float eps);
Var batch_norm_infer(const Var& x, const Var& gamma, const Var& beta, const Tensor& running_mean,
                     const Tensor& running_var, float eps);
// Layer norm over the last axis; gamma, beta [C].
Var layer_norm(const Var& x, const Var& gamma, const Var& beta, float eps);

// ---- dropout.cc --------------------------------------------------------------------------------------
// Inverted dropout: zeroes with probability p and scales the rest by 1/(1-p). Identity when p == 0.
Var dropout(const Var& x, float p, std::mt19937_64& rng);

// ---- attention.cc ------------------------------------------------------------------------------------
// q, k, v [B, heads, T, D] -> [B, heads, T, D]; softmax(q k^T / sqrt(D) + mask) v.
// mask [T, T] (additive, 0 or -inf) or undefined.
Var scaled_dot_product_attention(const Var& q, const Var& k, const Var& v, const Tensor* mask);
Tensor causal_mask(int64_t t);

// ---- embedding.cc ------------------------------------------------------------------------------------
// ids [...] (integer values stored as float) into table [V, D] -> [..., D]. Throws on an id outside [0, V).
Var embedding_lookup(const Tensor& ids, const Var& table);

// ---- loss.cc: each returns the mean over samples, shape [] -------------------------------------------
// logits [N, C] (or [..., C]); labels: N class indices in [0, C). Label smoothing as Keras/PyTorch.
Var softmax_cross_entropy(const Var& logits, const std::vector<int>& labels, float label_smoothing = 0.f);
// logits [N] or [N, 1]; targets in {0, 1} (or probabilities). Computed from logits, numerically stable.
Var binary_cross_entropy(const Var& logits, const Tensor& targets);
Var mse_loss(const Var& pred, const Tensor& target);
// Squared hinge for +-1 targets: mean(max(0, 1 - y * pred)^2).
Var l2_margin_loss(const Var& pred, const Tensor& target);

}  // namespace kiln
