// Nearest-neighbour upsampling, channels-last: output pixel (oh, ow) copies input pixel (oh / sh, ow / sw).
// The backward is the transpose, a sum over each sh x sw block. The 1-d version is the 2-d one with H = 1.
#include <algorithm>

#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

Var upsample2d(const Var& x, int size_h, int size_w) {
  if (x.ndim() != 4 || size_h < 1 || size_w < 1)
    throw ShapeError("upsample2d: input " + shape_str(x.shape()) + " with size (" + std::to_string(size_h) +
                     ", " + std::to_string(size_w) + ") (need [B, H, W, C] and sizes >= 1)");
  const int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3), sh = size_h, sw = size_w;
  const int64_t OH = H * sh, OW = W * sw;
  Tensor out = Tensor::uninitialized({B, OH, OW, C});
  const float* px = x.value().data();
  float* po = out.data();
  // One output row [OW, C] per iteration: it reads one input row [W, C].
#pragma omp parallel for
  for (int64_t r = 0; r < B * OH; ++r) {
    const float* xr = px + ((r / OH) * H + (r % OH) / sh) * W * C;  // input row (b, oh / sh)
    float* yr = po + r * OW * C;
    for (int64_t ow = 0; ow < OW; ++ow) std::copy_n(xr + (ow / sw) * C, C, yr + ow * C);
  }
  return make_result(std::move(out), "upsample2d", {x}, [B, H, W, C, sh, sw, OH, OW](Node& self) {
    float* dx = self.inputs[0]->grad_buffer().data();
    const float* g = self.grad.data();
    // One input row [W, C] per iteration, summing the sh output rows of its block: no two iterations
    // write the same gradient.
#pragma omp parallel for
    for (int64_t r = 0; r < B * H; ++r) {
      float* dxr = dx + r * W * C;
      for (int64_t i = 0; i < sh; ++i) {
        const float* gr = g + ((r / H) * OH + (r % H) * sh + i) * OW * C;  // output row (b, h sh + i)
        for (int64_t ow = 0; ow < OW; ++ow) {
          float* d = dxr + (ow / sw) * C;
          const float* s = gr + ow * C;
          for (int64_t c = 0; c < C; ++c) d[c] += s[c];
        }
      }
    }
  });
}

Var upsample1d(const Var& x, int size) {
  if (x.ndim() != 3 || size < 1)
    throw ShapeError("upsample1d: input " + shape_str(x.shape()) + " with size " + std::to_string(size) +
                     " (need [B, L, C] and size >= 1)");
  const int64_t B = x.dim(0), L = x.dim(1), C = x.dim(2);
  return reshape(upsample2d(reshape(x, {B, 1, L, C}), 1, size), {B, L * size, C});
}

}  // namespace kiln
