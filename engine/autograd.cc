#include "engine/autograd.h"

#include <unordered_set>

#include "engine/check.h"

namespace kiln {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

Tensor& Node::grad_buffer() {
  bool fresh = false;
  Tensor& g = grad_buffer_unfilled(&fresh);
  if (fresh) g.zero();
  return g;
}

Tensor& Node::grad_buffer_unfilled(bool* fresh) {
  *fresh = !grad_allocated();
  if (*fresh) grad = Tensor::uninitialized(value.shape());
  return grad;
}

bool Node::take_grad(Node& out) {
  if (grad_allocated() || out.grad.shape() != value.shape()) return false;
  grad = std::move(out.grad);
  return true;
}

Var::Var(Tensor value, bool requires_grad) : node_(std::make_shared<Node>()) {
  node_->value = std::move(value);
  node_->requires_grad = requires_grad;
}

Var make_result(Tensor value, const char* op, std::vector<Var> inputs, BackwardFn fn) {
  Var out(std::move(value));
  out.node()->op = op;
  if (!g_grad_enabled) return out;
  bool any = false;
  for (const Var& v : inputs) any = any || v.requires_grad();
  if (!any) return out;
  Node* n = out.node();
  n->requires_grad = true;
  n->inputs.reserve(inputs.size());
  for (Var& v : inputs) n->inputs.push_back(v.ptr());
  n->backward = std::move(fn);
  return out;
}

// Reverse topological order by iterative DFS (graphs can be deep: no recursion).
static std::vector<Node*> topo_order(Node* root) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  seen.insert(root);
  while (!stack.empty()) {
    auto& [n, i] = stack.back();
    if (i < n->inputs.size()) {
      Node* child = n->inputs[i++].get();
      if (child->requires_grad && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(n);
      stack.pop_back();
    }
  }
  return order;  // inputs before outputs
}

void backward(const Var& root, const Tensor& seed) {
  KILN_CHECK(root.defined(), "backward on an undefined Var");
  KILN_CHECK(root.requires_grad(), "backward on a Var that does not depend on any parameter");
  KILN_CHECK(seed.shape() == root.shape(),
             "seed " + shape_str(seed.shape()) + " vs root " + shape_str(root.shape()));
  Node* r = root.node();
  Tensor& g = r->grad_buffer();
  g.vec() += seed.vec();
  std::vector<Node*> order = topo_order(r);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    if (n->backward && n->grad.size() == n->value.size()) n->backward(*n);
  }
}

void backward(const Var& root) {
  KILN_CHECK(root.size() == 1, "backward() without a seed needs a scalar, got " + shape_str(root.shape()));
  backward(root, Tensor(root.shape(), 1.f));
}

}  // namespace kiln
