// A 2-d max pool whose windows tile the input (every window inside it, stride = pool), one band of pool_h
// input rows at a time: for an op that makes the pool's input band by band and pools it while it is in cache
// (compress/quantize_pool.h: HGQ's quantizer on a pool's input). max_pool2d runs the same functions on such
// windows, so the two give the same bits.
#pragma once
#include <cstdint>

#include "engine/ops.h"

namespace kiln::pool {

struct Tiled {
  int64_t h, w, c;  // input [H, W, C] per sample
  int64_t kh, kw;   // window = stride
  int64_t oh, ow;   // output rows and columns: H / kh, W / kw (input rows and columns past them take no part)
  int64_t band() const { return kh * w * c; }  // elements of one band: the kh input rows of an output row
};

// The geometry of window `win` over a sample [H, W, C] when its windows tile it (every window inside, stride
// = pool), else with oh = ow = 0 (overlapping or padded windows, or no window at all).
Tiled tiled_pool(int64_t h, int64_t w, int64_t c, const PoolWindow2d& win);

// Output row o ([OW, C] at y) from its band (input rows o * kh ... o * kh + kh - 1, [kh, W, C] at band): each
// window's first maximum in window order (strict >, so NaN never wins and an all-NaN or all -inf window
// gives -inf) and, unless argmax is null, its offset within the sample's [H, W, C] (-1 where nothing beat
// -inf).
void max_band_forward(const Tiled& p, int64_t o, const float* band, float* y, int32_t* argmax);

// One sample's input gradient [H, W, C] from its output gradient g and argmax ([OH, OW, C] each): 0 + g at
// each window's argmax, 0 at its other taps and in the rows and columns past the last window. Every
// element is written once, so dx needs no fill.
void max_tiled_backward(const Tiled& p, const float* g, const int32_t* argmax, float* dx);

}  // namespace kiln::pool
