// Evaluates expressions on Columns, one batch of kBatch rows at a time, and differentiates them with
// respect to their constants (reverse mode over the postfix array).
//
//   Evaluator ev;                          // one per thread: it owns the scratch buffers
//   AlignedFloats y(x.padded());
//   ev.predict(tree, x, y.data());         // y[r] for r < x.rows() (the padding rows hold garbage)
//   AlignedFloats jac(p * x.padded());     // p = num_constants(tree)
//   ev.jacobian(tree, x, y.data(), jac.data());   // jac[k * padded + r] = dy[r] / d(k-th constant)
//
// How it is fast: variable nodes read the data columns in place and constant columns are filled once per
// tree, so per batch only operator nodes run, each a tight vector loop over kBatch floats
// (kernels.h); the operator list is decoded once per tree, not once per batch. Data of at most
// kSmallBatch rows run narrower kernels (rows beyond x.rows() of out and jac are then left undefined).
#pragma once
#include <cstdint>
#include <vector>

#include "symreg/columns.h"
#include "symreg/tree.h"

namespace kiln::symreg {

class Evaluator {
 public:
  Evaluator();

  // out: x.padded() floats.
  void predict(const Tree& t, const Columns& x, float* out);
  // out as predict; jac: num_constants(t) * x.padded() floats, constants in node order.
  void jacobian(const Tree& t, const Columns& x, float* out, float* jac);

 private:
  struct Instr {
    Op op;
    int node, a, b;  // node index and its operands' node indices (b = a for unary ops)
  };
  void prepare(const Tree& t);
  void forward_batch(const Tree& t, const Columns& x, int64_t offset, float* root_out);

  AlignedFloats values_, adjoints_;  // [kMaxLength][kBatch] each
  std::vector<const float*> ptr_;    // per node: its current batch column
  std::vector<Instr> code_;
  std::vector<int> vars_;           // indices of variable nodes
  std::vector<uint8_t> has_const_;  // per node: does its subtree hold a constant?
  std::vector<int> const_slot_;     // per node: its constant's index, or -1 (jacobian's scratch)
  int width_ = 0;                   // rows each kernel computes: kBatch, or kSmallBatch on small data
};

}  // namespace kiln::symreg
