// quantize_fixed on the input of a 2-d max pool and the pool, in one op: HGQ puts a quantizer on every pool's
// input, and in the Fashion-MNIST CNN those two quantizers hold 77% of the quantized activations. The op
// gives the values and gradients of max_pool2d(quantize_fixed(x, f, i, ...)) bit for bit. Its forward runs
// one band of pool_h input rows at a time (engine/pool_band.h): each band is quantized for the whole batch
// into a buffer that stays in cache and pooled from there, so the quantized input never makes the round trip
// through memory that the two ops apart give it. Its backward is the two ops' backward in their order, the
// pool's gradient written into x's gradient and rewritten there by the quantizer's (quantize_pool.cc says
// why not band by band).
#pragma once
#include <memory>

#include "compress/quantize_kernel.h"
#include "engine/autograd.h"
#include "engine/ops.h"

namespace kiln::compress {

// x [B, H, W, C]; f and i the bits of quantize_fixed per element ([H, W, C] each), `table` its vectorised
// path's constants for them (fast_table, or a FixedPlan's); the pool's windows must tile the input (inside
// it, stride = pool size). Returns an undefined Var where any of that does not hold, and when an element of x
// needs the scalar definition (non-finite or huge codes): the caller then composes the two ops.
Var quantize_max_pool2d(const Var& x, const Var& f, const Var& i, std::shared_ptr<const qkernel::Table> table,
                        const PoolWindow2d& w);

}  // namespace kiln::compress
