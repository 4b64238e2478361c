// Reverse-mode autodiff. A Var is a handle to a Node holding a value, its gradient and, for the result of
// an op, the op's inputs and a backward closure written beside the forward in the op's own file
// (style.md, principle 1). Ops record a backward only when an input requires a gradient and grad mode
// is on, so inference builds no graph.
//
//   Var w(Tensor({3, 2}), /*requires_grad=*/true);
//   Var loss = mean_all(relu(matmul(x, w)));
//   backward(loss);        // w.grad() now holds d loss / d w
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace kiln {

struct Node;
using BackwardFn = std::function<void(Node& self)>;

struct Node {
  Tensor value;
  // Same shape as value; allocated on the first accumulation. The engine reads a node's gradient only to run
  // that node's backward, once per backward(), so the closure may consume it: overwrite it in place, or hand
  // its buffer on to an input (take_grad).
  Tensor grad;
  bool requires_grad = false;
  const char* op = "leaf";
  std::vector<std::shared_ptr<Node>> inputs;
  BackwardFn backward;

  // The gradient buffer, zero-filled on first use; backward closures accumulate into it with +=.
  Tensor& grad_buffer();
  // The same buffer without the fill: *fresh is set when it was just allocated, and the caller then zeroes
  // it before accumulating (a large op does so per sample, inside its own parallel loop, where a serial fill
  // of the whole buffer would leave the other threads idle).
  Tensor& grad_buffer_unfilled(bool* fresh);
  // For out's backward, out being an op on this node with a result of this node's shape: when this node's
  // gradient is not allocated yet, moves out's gradient buffer here and returns true (the caller then turns
  // it into this node's gradient in place, reading each element before writing it); else returns false.
  bool take_grad(Node& out);

 private:
  bool grad_allocated() const { return grad.size() == value.size() && grad.shape() == value.shape(); }
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false);

  const Tensor& value() const { return node_->value; }
  Tensor& value() { return node_->value; }
  const Tensor& grad() const { return node_->grad; }
  Tensor& grad() { return node_->grad; }
  const Shape& shape() const { return node_->value.shape(); }
  int64_t dim(int axis) const { return node_->value.dim(axis); }
  int ndim() const { return node_->value.ndim(); }
  int64_t size() const { return node_->value.size(); }
  bool requires_grad() const { return node_ && node_->requires_grad; }
  bool defined() const { return node_ != nullptr; }
  Node* node() const { return node_.get(); }
  const std::shared_ptr<Node>& ptr() const { return node_; }

 private:
  std::shared_ptr<Node> node_;
};

// Result of an op: records `fn` and the inputs only when some input requires a gradient and grad mode is on.
Var make_result(Tensor value, const char* op, std::vector<Var> inputs, BackwardFn fn);

// Runs the backward pass from a scalar (or from `seed`, same shape as root's value).
void backward(const Var& root);
void backward(const Var& root, const Tensor& seed);

// Gradient recording on/off for this thread (RAII). Inference and evaluation run under NoGradGuard.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace kiln
