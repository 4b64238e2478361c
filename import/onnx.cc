// ONNX graphs (opset 9-17) to kiln layers: the graph walk, Gemm/MatMul (+ Add as a bias), activations and
// BatchNormalization (onnx_converter.h explains the layouts).
#include <algorithm>

#include "engine/ops.h"
#include "import/onnx_converter.h"

namespace kiln::import::onnx_detail {

void Converter::run() {
  check_opset();
  const onnx::GraphProto& g = m_.graph();
  for (const auto& t : g.initializer())
    consts_[t.name()] = tensor_value(t, file_ + ": initializer '" + t.name() + "'");
  for (const auto& n : g.node())
    for (const auto& i : n.input()) ++uses_[i];
  for (const auto& o : g.output()) ++uses_[o.name()];
  add_input(g);
  for (int i = 0; i < g.node_size(); ++i) {
    node_ = &g.node(i);
    label_ = file_ + ": " + node_label(*node_, i);
    convert(*node_);
  }
  if (g.output_size() != 1)
    throw InputError(file_ + ": the graph has " + std::to_string(g.output_size()) +
                     " outputs; kiln imports single-output models");
  const std::string& o = g.output(0).name();
  if (o != current_)
    throw InputError(file_ + ": the graph output '" + o + "' is not the end of the layer chain");
  if (values_.at(o).layout == Layout::kChannelsFirst && values_.at(o).kiln.size() > 1)
    throw InputError(file_ + ": the graph output '" + o + "' is channels-first " +
                     shape_str(values_.at(o).onnx) +
                     "; kiln's would be channels-last (end the model with Flatten or a Transpose)");
  if (out_.layers.size() == 0)
    throw InputError(file_ + ": the graph has no operator kiln turns into a layer");
}

void Converter::check_opset() {
  int64_t v = -1;
  for (const auto& o : m_.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") v = o.version();
  if (v < 9 || v > 17)
    throw InputError(file_ + ": ONNX opset " + std::to_string(v) +
                     " is outside the range kiln imports (9-17)");
  opset_ = v;
}

void Converter::add_input(const onnx::GraphProto& g) {
  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const auto& i : g.input())
    if (!consts_.count(i.name())) inputs.push_back(&i);
  if (inputs.size() != 1)
    throw InputError(file_ + ": the graph has " + std::to_string(inputs.size()) +
                     " non-constant inputs; kiln imports single-input models");
  const auto& dims = inputs[0]->type().tensor_type().shape().dim();
  if (dims.size() < 2)
    throw InputError(file_ + ": input '" + inputs[0]->name() + "' has no batch and feature axes");
  batch_ = dims[0].has_dim_value() ? dims[0].dim_value() : -1;
  Value v;
  for (int i = 1; i < dims.size(); ++i) {
    if (!dims[i].has_dim_value() || dims[i].dim_value() < 1)
      throw InputError(file_ + ": input '" + inputs[0]->name() + "' axis " + std::to_string(i) +
                       " has no fixed size; kiln needs a fixed per-sample shape");
    v.onnx.push_back(dims[i].dim_value());
  }
  v.kiln = v.onnx;
  // The input is channels-first when it goes straight into an operator that is (PyTorch's Conv2d).
  for (const auto& n : g.node()) {
    if (std::find(n.input().begin(), n.input().end(), inputs[0]->name()) == n.input().end()) continue;
    static const std::set<std::string> kCf{"Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
                                           "BatchNormalization"};
    if (kCf.count(n.op_type()) && v.onnx.size() >= 2) {
      v.layout = Layout::kChannelsFirst;
      v.kiln.assign(v.onnx.begin() + 1, v.onnx.end());
      v.kiln.push_back(v.onnx[0]);
      out_.channels_first_input = true;
      out_.notes.push_back("input '" + inputs[0]->name() + "' is channels-first " + shape_str(v.onnx) +
                           "; kiln's model takes it channels-last " + shape_str(v.kiln));
    }
    break;
  }
  out_.input_shape = v.kiln;
  current_ = inputs[0]->name();
  values_[current_] = v;
}

void Converter::convert(const onnx::NodeProto& n) {
  const std::string& op = n.op_type();
  if (!n.domain().empty() && n.domain() != "ai.onnx")
    fail("operator domain '" + n.domain() + "' is not the standard ONNX one; kiln cannot import it");
  if (op == "Constant") {
    const auto* a = find_attr(n, "value");
    if (!a || !a->has_t()) fail("only tensor-valued Constants are supported");
    consts_[n.output(0)] = tensor_value(a->t(), label_);
  } else if (op == "Identity" || op == "Dropout") {
    if (op == "Dropout" && n.output_size() > 1 && uses_[n.output(1)] > 0) fail("its mask output is used");
    produce(input());
  } else if (op == "Gemm") {
    if (attr_int(n, "transA", 0) != 0) fail("transA = 1 (kiln: the input is [batch, features])");
    const Tensor& b = constant(1, "the weight B");
    if (b.ndim() != 2) fail("weight B has shape " + shape_str(b.shape()) + ", expected 2-d");
    Tensor w = b;
    if (attr_int(n, "transB", 0)) {  // B [M, K] -> W [K, M]
      w = Tensor({b.dim(1), b.dim(0)});
      for (int64_t m = 0; m < b.dim(0); ++m)
        for (int64_t k = 0; k < b.dim(1); ++k) w[k * b.dim(0) + m] = b[m * b.dim(1) + k];
    }
    w.vec() *= attr_float(n, "alpha", 1.f);
    Tensor c;
    if (has_input(2)) {
      c = constant(2, "the bias C");
      c.vec() *= attr_float(n, "beta", 1.f);
    }
    dense(w, has_input(2) ? &c : nullptr, true);
  } else if (op == "MatMul") {
    dense(constant(1, "the weight (second input)"), nullptr, false);
  } else if (op == "Add") {
    bias_add();
  } else if (op == "Conv") {
    conv();
  } else if (op == "MaxPool" || op == "AveragePool") {
    pool(false);
  } else if (op == "GlobalAveragePool") {
    pool(true);
  } else if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Softmax" || op == "LeakyRelu") {
    activation(op == "LeakyRelu" ? "leaky_relu"
               : op == "Relu"    ? "relu"
               : op == "Sigmoid" ? "sigmoid"
               : op == "Tanh"    ? "tanh"
                                 : "softmax");
  } else if (op == "BatchNormalization") {
    batch_norm();
  } else if (op == "Flatten") {
    const int64_t axis = attr_int(n, "axis", 1);
    // Keras' converter writes axis 0 for a batch of 1: the same per-sample flatten.
    if (!(axis == 1 || (axis == 0 && batch_ == 1)))
      fail("axis " + std::to_string(axis) + " (kiln flattens from axis 1)");
    flatten_to(input());
  } else if (op == "Reshape") {
    reshape();
  } else if (op == "Transpose") {
    transpose();
  } else {
    fail(std::string("kiln cannot import this operator (supported: ") + kSupported + ")");
  }
}

// Gemm / MatMul: y = x W (+ b), W [K, M]; rows reordered when x is a flattened channels-first tensor.
void Converter::dense(const Tensor& w_km, const Tensor* bias, bool gemm) {
  const Value& v = input();
  if (w_km.ndim() != 2) fail("weight has shape " + shape_str(w_km.shape()) + ", expected [K, M]");
  if (v.layout != Layout::kSame || v.kiln.empty() || v.kiln.back() != w_km.dim(0))
    fail("input " + shape_str(v.onnx) + " does not match the weight " + shape_str(w_km.shape()));
  if (!gemm && v.kiln.size() != 1 && !v.perm.empty()) fail("a flattened input must be 1-d");
  const int64_t k = w_km.dim(0), m = w_km.dim(1);
  Tensor w({k, m});
  for (int64_t i = 0; i < k; ++i) {
    const int64_t src = v.perm.empty() ? i : v.perm[static_cast<size_t>(i)];
    for (int64_t j = 0; j < m; ++j) w[i * m + j] = w_km[src * m + j];
  }
  Value o;
  o.onnx = v.onnx, o.kiln = v.kiln;
  o.onnx.back() = o.kiln.back() = m;
  YAML::Node l = add_layer("dense", &o);
  l["units"] = m;
  l["use_bias"] = bias != nullptr;
  l["activation"] = "linear";
  out_.params[o.layer + ".weight"] = w;
  if (bias) {
    if (bias->size() != m && bias->size() != 1)
      fail("bias has shape " + shape_str(bias->shape()) + ", expected [" + std::to_string(m) + "]");
    out_.params[o.layer + ".bias"] = bias->size() == m ? bias->reshaped({m}) : Tensor({m}, (*bias)[0]);
  }
  produce(o);
}

// Add of a constant to a Dense/Conv output: its bias (MatMul + Add, as Keras converters write Dense).
void Converter::bias_add() {
  int runtime = -1;
  for (int i = 0; i < 2 && i < node_->input_size(); ++i)
    if (values_.count(node_->input(i))) runtime = runtime < 0 ? i : 2;
  if (runtime == 2)
    fail("adds two computed tensors (a residual connection); kiln imports chains of operators");
  if (runtime < 0) fail("adds two constants");
  const Value& v = input(runtime);
  std::optional<YAML::Node> l = fusable(v, node_->input(runtime));
  if (!l)
    fail("adds a constant to something other than a Dense/Conv output (kiln has no separate bias layer)");
  const Tensor& b = constant(1 - runtime, "the added value");
  const int64_t c = v.layout == Layout::kChannelsFirst ? v.onnx[0] : v.onnx.back();
  if (b.size() != c && b.size() != 1)
    fail("adds a constant of shape " + shape_str(b.shape()) + " (not a per-channel bias of " +
         std::to_string(c) + ")");
  const std::string key = v.layer + ".bias";
  Tensor bias = out_.params.count(key) ? out_.params[key] : Tensor({c}, 0.f);
  for (int64_t j = 0; j < c; ++j) bias[j] += b.size() == c ? b[j] : b[0];
  out_.params[key] = bias;
  (*l)["use_bias"] = true;
  produce(v);
}

void Converter::activation(const std::string& type) {
  const Value& v = input();
  if (type == "softmax") {
    const int64_t rank = static_cast<int64_t>(v.onnx.size()) + 1;
    int64_t axis = attr_int(*node_, "axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    const bool channels = v.layout == Layout::kChannelsFirst ? axis == 1 : axis == rank - 1;
    if (!channels && !(opset_ < 13 && rank == 2))
      fail("axis " + std::to_string(axis) + " (kiln: softmax over the channels)");
  }
  const float alpha = attr_float(*node_, "alpha", 0.01f);
  Value o = v;
  if (std::optional<YAML::Node> l = fusable(v, node_->input(0)); l && type != "leaky_relu") {
    (*l)["activation"] = type;
  } else {
    YAML::Node a = add_layer(type, &o);
    if (type == "leaky_relu") a["alpha"] = alpha;
  }
  produce(o);
}

void Converter::batch_norm() {
  const Value& v = input();
  if (attr_int(*node_, "training_mode", 0) != 0) fail("training_mode = 1 (kiln imports inference graphs)");
  if (!(v.layout == Layout::kChannelsFirst || v.kiln.size() == 1))
    fail("normalises axis 1 of a channels-last tensor");
  const int64_t c = v.kiln.back();
  const char* what[] = {"scale", "B", "mean", "var"};
  Tensor t[4];
  for (int i = 0; i < 4; ++i) {
    t[i] = constant(i + 1, std::string("input ") + what[i]);
    if (t[i].size() != c)
      fail(std::string(what[i]) + " has " + std::to_string(t[i].size()) + " values for " + std::to_string(c) +
           " channels");
    if (!v.perm.empty()) {  // a flattened channels-first tensor: kiln's feature j is ONNX's perm[j]
      Tensor p({c});
      for (int64_t j = 0; j < c; ++j) p[j] = t[i][v.perm[static_cast<size_t>(j)]];
      t[i] = p;
    }
  }
  Value o = v;
  YAML::Node l = add_layer("batch_norm", &o);
  l["epsilon"] = attr_float(*node_, "epsilon", 1e-5f);
  l["momentum"] = attr_float(*node_, "momentum", 0.9f);
  out_.params[o.layer + ".gamma"] = t[0].reshaped({c});
  out_.params[o.layer + ".beta"] = t[1].reshaped({c});
  out_.buffers[o.layer + ".running_mean"] = t[2].reshaped({c});
  out_.buffers[o.layer + ".running_var"] = t[3].reshaped({c});
  produce(o);
}

}  // namespace kiln::import::onnx_detail
