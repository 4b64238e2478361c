// Embedding lookup: a gather on the forward, a scatter-add on the backward.
#include <cmath>

#include "engine/check.h"
#include "engine/ops.h"

namespace kiln {

Var embedding_lookup(const Tensor& ids, const Var& table) {
  if (table.ndim() != 2) throw ShapeError("embedding: table of shape " + shape_str(table.shape()) + " (need [V, D])");
  int64_t v = table.dim(0), d = table.dim(1), n = ids.size();
  std::vector<int64_t> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float f = ids[i];
    if (!(f >= 0.f && f < static_cast<float>(v)) || f != std::floor(f))
      throw InputError("embedding: token id " + std::to_string(f) + " outside [0, " + std::to_string(v) + ")");
    rows[static_cast<size_t>(i)] = static_cast<int64_t>(f);
  }
  Shape os = ids.shape();
  os.push_back(d);
  Tensor out(os);
  for (int64_t i = 0; i < n; ++i) std::copy_n(table.value().data() + rows[i] * d, d, out.data() + i * d);
  return make_result(std::move(out), "embedding", {table}, [rows = std::move(rows), d](Node& self) {
    float* dt = self.inputs[0]->grad_buffer().data();
    for (size_t i = 0; i < rows.size(); ++i)
      for (int64_t j = 0; j < d; ++j) dt[rows[i] * d + j] += self.grad[static_cast<int64_t>(i) * d + j];
  });
}

}  // namespace kiln
