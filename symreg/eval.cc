#include "symreg/eval.h"

#include <cstring>

#include "engine/check.h"
#include "symreg/kernels.h"

namespace kiln::symreg {

Evaluator::Evaluator()
    : values_(static_cast<size_t>(kMaxLength) * kBatch), adjoints_(static_cast<size_t>(kMaxLength) * kBatch) {
  ptr_.resize(kMaxLength);
  code_.reserve(kMaxLength);
  has_const_.resize(kMaxLength);
}

// Decodes the tree once: operand indices of each operator, constant columns filled (they stay valid for
// every batch), variables listed so that each batch only moves their pointers.
void Evaluator::prepare(const Tree& t) {
  KILN_CHECK(!t.empty() && t.size() <= kMaxLength, "tree length " + std::to_string(t.size()));
  code_.clear(), vars_.clear();
  float* vals = values_.data();
  for (int i = 0; i < static_cast<int>(t.size()); ++i) {
    const Node& n = t[i];
    float* col = vals + static_cast<size_t>(i) * kBatch;
    if (n.op == Op::kConst) {
      for (int j = 0; j < width_; ++j) col[j] = n.value;
      ptr_[i] = col, has_const_[i] = 1;
    } else if (n.op == Op::kVar) {
      vars_.push_back(i), has_const_[i] = 0;
    } else {
      int c[2];
      children(t, i, c);
      if (n.arity == 1) c[1] = c[0];
      code_.push_back({n.op, i, c[0], c[1]});
      ptr_[i] = col, has_const_[i] = has_const_[c[0]] | has_const_[c[1]];
    }
  }
}

void Evaluator::forward_batch(const Tree& t, const Columns& x, int64_t offset, float* root_out) {
  for (int v : vars_) ptr_[v] = x.col(t[v].feature) + offset;
  float* vals = values_.data();
  for (const Instr& in : code_) {
    float* d = vals + static_cast<size_t>(in.node) * kBatch;
    if (width_ == kSmallBatch)
      kernel::forward<kSmallBatch>(in.op, d, ptr_[in.a], ptr_[in.b]);
    else
      kernel::forward<kBatch>(in.op, d, ptr_[in.a], ptr_[in.b]);
  }
  if (root_out) std::memcpy(root_out + offset, ptr_[t.size() - 1], kBatch * sizeof(float));
}

void Evaluator::predict(const Tree& t, const Columns& x, float* out) {
  width_ = x.rows() <= kSmallBatch ? kSmallBatch : kBatch;
  prepare(t);
  for (int64_t off = 0; off < x.padded(); off += kBatch) forward_batch(t, x, off, out);
}

void Evaluator::jacobian(const Tree& t, const Columns& x, float* out, float* jac) {
  width_ = x.rows() <= kSmallBatch ? kSmallBatch : kBatch;
  prepare(t);
  const int n = static_cast<int>(t.size());
  std::vector<int>& const_slot = const_slot_;
  const_slot.assign(t.size(), -1);
  int p = 0;
  for (int i = 0; i < n; ++i)
    if (t[i].op == Op::kConst) const_slot[i] = p++;
  float* adj = adjoints_.data();
  auto col = [&](int i) { return adj + static_cast<size_t>(i) * kBatch; };
  for (int64_t off = 0; off < x.padded(); off += kBatch) {
    forward_batch(t, x, off, out);
    if (p == 0) continue;
    for (int j = 0; j < width_; ++j) col(n - 1)[j] = 1.0f;
    // Parents come after their children in postfix order, so walking down from the root visits every
    // node after its parent; each node has one parent, so its adjoint is assigned, not accumulated.
    for (auto it = code_.rbegin(); it != code_.rend(); ++it) {
      if (!has_const_[it->node]) continue;
      if (width_ == kSmallBatch)
        kernel::backward<kSmallBatch>(it->op, col(it->a), col(it->b), col(it->node), ptr_[it->node],
                                      ptr_[it->a], ptr_[it->b]);
      else
        kernel::backward<kBatch>(it->op, col(it->a), col(it->b), col(it->node), ptr_[it->node], ptr_[it->a],
                                 ptr_[it->b]);
    }
    for (int i = 0; i < n; ++i)
      if (const_slot[i] >= 0)
        std::memcpy(jac + static_cast<size_t>(const_slot[i]) * x.padded() + off, col(i),
                    kBatch * sizeof(float));
  }
}

}  // namespace kiln::symreg
