// Inverted dropout: the kept units are scaled by 1/(1-p) in training, so inference is the identity.
#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

Var dropout(const Var& x, float p, std::mt19937_64& rng) {
  if (!(p >= 0.f && p < 1.f)) throw InputError("dropout rate must be in [0, 1), got " + std::to_string(p));
  if (p == 0.f) return x;
  Tensor mask(x.shape());
  std::bernoulli_distribution keep(1.0 - p);
  float scale = 1.f / (1.f - p);
  for (int64_t i = 0; i < mask.size(); ++i) mask[i] = keep(rng) ? scale : 0.f;
  Tensor out(x.shape());
  out.vec() = x.value().vec().cwiseProduct(mask.vec());
  return make_result(std::move(out), "dropout", {x}, [mask = std::move(mask)](Node& self) {
    self.inputs[0]->grad_buffer().vec() += self.grad.vec().cwiseProduct(mask.vec());
  });
}

}  // namespace kiln
