// The ONNX graph walker shared by onnx.cc (graph, Gemm/MatMul, activations, BatchNorm) and onnx_layout.cc
// (Conv, pooling, Flatten, Reshape, Transpose). A graph must be a chain: each operator consumes the tensor
// the previous one produced (plus constants). ONNX convolutions are channels-first ([C, H, W]); kiln is
// channels-last, so every tensor carries its layout: kSame (kiln holds the ONNX tensor as it is) or
// kChannelsFirst (ONNX [C, S...], kiln [S..., C]). Transposes between the two cost nothing; a flatten of a
// channels-first tensor records the element order (perm), which the next Gemm/MatMul folds into the rows of
// its weight, as hls4ml does.
#pragma once
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "import/imported.h"
#include "import/onnx_tensor.h"

namespace kiln::import::onnx_detail {

enum class Layout { kSame, kChannelsFirst };

struct Value {
  Shape onnx, kiln;  // per sample
  Layout layout = Layout::kSame;
  std::vector<int64_t>
      perm;           // flattened channels-first: kiln element i is ONNX element perm[i] (empty: same)
  std::string layer;  // the kiln layer that produced it ("" for the graph input)
};

inline const char* kSupported =
    "Gemm, MatMul, Add (a bias), Conv, BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, MaxPool, "
    "AveragePool, GlobalAveragePool, Flatten, Reshape, Transpose (layout), Identity, Dropout, Constant";

class Converter {
 public:
  Converter(const onnx::ModelProto& m, const std::string& file, Imported& out)
      : m_(m), file_(file), out_(out) {}

  void run();

 private:
  [[noreturn]] void fail(const std::string& why) const { throw InputError(label_ + ": " + why); }
  void check_opset();
  void add_input(const onnx::GraphProto& g);

  // The node's runtime input (the end of the chain so far).
  const Value& input(int i = 0) const {
    if (node_->input_size() <= i) fail("has no input " + std::to_string(i));
    const std::string& name = node_->input(i);
    if (!values_.count(name)) fail("input '" + name + "' is neither a computed tensor nor a constant");
    if (name != current_)
      fail("takes '" + name + "', not the previous operator's output '" + current_ +
           "'; kiln imports a chain of operators (no branches)");
    return values_.at(name);
  }
  const Tensor& constant(int i, const std::string& what) const {
    if (node_->input_size() <= i || !consts_.count(node_->input(i)))
      fail(what + " must be a constant (an initializer), got " +
           (node_->input_size() <= i ? std::string("nothing") : "'" + node_->input(i) + "'"));
    return consts_.at(node_->input(i));
  }
  bool has_input(int i) const { return node_->input_size() > i && !node_->input(i).empty(); }

  void produce(Value v) {
    current_ = node_->output(0);
    values_[current_] = std::move(v);
  }

  std::string layer_name(const std::string& type) {
    std::string base = node_->name().empty() ? type + "_" + std::to_string(++count_[type]) : node_->name();
    for (char& ch : base)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') ch = '_';
    std::string name = base;
    for (int k = 2; !names_.insert(name).second; ++k) name = base + "_" + std::to_string(k);
    return name;
  }
  YAML::Node add_layer(const std::string& type, Value* v) {
    const std::string name = layer_name(type);
    v->layer = name;
    return out_.add_layer(name, type);
  }
  // The last layer, if it is a Dense/Conv without activation that produced `v` and nothing else reads v: an
  // activation or a bias can join it. (A YAML::Node() is a defined null node, hence the optional.)
  std::optional<YAML::Node> fusable(const Value& v, const std::string& tensor) {
    if (out_.layers.size() == 0 || v.layer.empty() || uses_[tensor] != 1) return std::nullopt;
    YAML::Node last = out_.last_layer();
    const std::string t = last["type"].as<std::string>();
    if (last["name"].as<std::string>() != v.layer) return std::nullopt;
    if (t != "dense" && t != "conv1d" && t != "conv2d" && t != "depthwise_conv2d") return std::nullopt;
    if (last["activation"].as<std::string>() != "linear") return std::nullopt;
    return last;
  }

  void convert(const onnx::NodeProto& n);
  void dense(const Tensor& w_km, const Tensor* bias, bool gemm);
  void conv();
  void pool(bool global);
  void activation(const std::string& type);
  void bias_add();
  void batch_norm();
  void flatten_to(const Value& v);
  void reshape();
  void transpose();
  std::string padding(const Shape& in, const std::vector<int64_t>& k, const std::vector<int64_t>& s);

  const onnx::ModelProto& m_;
  std::string file_;
  Imported& out_;
  int64_t opset_ = 0, batch_ = -1;
  std::map<std::string, Tensor> consts_;
  std::map<std::string, Value> values_;
  std::map<std::string, int> uses_, count_;
  std::set<std::string> names_;
  std::string current_, label_;
  const onnx::NodeProto* node_ = nullptr;
};

}  // namespace kiln::import::onnx_detail
