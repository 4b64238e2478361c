// ONNX layout operators (Flatten, Reshape, Transpose) and the channels-first spatial ones (Conv, MaxPool,
// AveragePool, GlobalAveragePool) as kiln layers; and import_onnx(), the entry point.
#include <fstream>

#include "engine/ops.h"
#include "import/onnx_converter.h"

namespace kiln::import::onnx_detail {

void Converter::flatten_to(const Value& v) {
  const int64_t n = shape_numel(v.onnx);
  Value o;
  o.onnx = o.kiln = {n};
  o.perm = v.perm;
  if (v.kiln.size() == 1) {  // already flat ([C] after a global pooling, or 1-d)
    o.layer = v.layer;
    return produce(o);
  }
  add_layer("flatten", &o);
  if (v.layout == Layout::kChannelsFirst) {  // kiln's element s * C + c is ONNX's c * S + s
    const int64_t c = v.onnx[0], s = n / c;
    o.perm.resize(static_cast<size_t>(n));
    for (int64_t si = 0; si < s; ++si)
      for (int64_t ci = 0; ci < c; ++ci) o.perm[static_cast<size_t>(si * c + ci)] = ci * s + si;
  }
  produce(o);
}

void Converter::reshape() {
  const Value& v = input();
  std::vector<int64_t> target;
  if (has_input(1)) {  // opset 5+: a constant input (exact: shapes are small integers)
    const Tensor& t = constant(1, "the target shape");
    for (int64_t i = 0; i < t.size(); ++i) target.push_back(static_cast<int64_t>(t[i]));
  } else {
    target = attr_ints(*node_, "shape", {});
  }
  if (target.empty()) fail("has no target shape");
  if (!(target[0] == 0 || target[0] == -1 || target[0] == batch_))
    fail("target shape starts with " + std::to_string(target[0]) + "; kiln keeps the batch axis (0 or -1)");
  Shape per;
  for (size_t i = 1; i < target.size(); ++i)
    per.push_back(target[i] == 0 && i - 1 < v.onnx.size() ? v.onnx[i - 1] : target[i]);
  Shape resolved;
  try {
    resolved = resolve_shape(per, shape_numel(v.onnx));
  } catch (const ShapeError&) {
    fail("cannot reshape " + shape_str(v.onnx) + " to " + shape_str(per));
  }
  if (resolved.size() == 1) return flatten_to(v);
  if (v.layout != Layout::kSame || !v.perm.empty())
    fail("reshapes a channels-first tensor to " + shape_str(resolved));
  Value o;
  o.onnx = o.kiln = resolved;
  YAML::Node l = add_layer("reshape", &o);
  YAML::Node s(YAML::NodeType::Sequence);
  for (int64_t d : resolved) s.push_back(d);
  s.SetStyle(YAML::EmitterStyle::Flow);
  l["shape"] = s;
  produce(o);
}

// Transposes between channels-last and channels-first change only the layout tag.
void Converter::transpose() {
  const Value& v = input();
  const std::vector<int64_t> perm = attr_ints(*node_, "perm", {});
  const int64_t r = static_cast<int64_t>(v.onnx.size());
  std::vector<int64_t> to_cf{0, r}, to_cl{0};
  for (int64_t i = 1; i < r; ++i) to_cf.push_back(i);
  for (int64_t i = 2; i <= r; ++i) to_cl.push_back(i);
  to_cl.push_back(1);
  Value o = v;
  if (r >= 2 && v.layout == Layout::kSame && perm == to_cf) {
    o.layout = Layout::kChannelsFirst;
    o.onnx.assign(v.onnx.end() - 1, v.onnx.end());
    o.onnx.insert(o.onnx.end(), v.onnx.begin(), v.onnx.end() - 1);
  } else if (r >= 2 && v.layout == Layout::kChannelsFirst && perm == to_cl) {
    o.layout = Layout::kSame;
    o.onnx = v.kiln;
  } else {
    fail("perm " + shape_str(perm) + " is not a channels-last <-> channels-first transpose");
  }
  produce(o);
}

// "valid" or "same" (TensorFlow's: the extra pad after) from ONNX pads/auto_pad, or an error naming them.
std::string Converter::padding(const Shape& in, const std::vector<int64_t>& k,
                               const std::vector<int64_t>& s) {
  const size_t dims = k.size();
  const std::string auto_pad = attr_string(*node_, "auto_pad", "NOTSET");
  std::vector<int64_t> pads = attr_ints(*node_, "pads", std::vector<int64_t>(2 * dims, 0));
  if (auto_pad == "VALID") return "valid";
  if (auto_pad == "SAME_UPPER") return "same";
  if (pads.size() != 2 * dims) fail("pads " + shape_str(pads) + " do not give a begin and end per axis");
  bool zero = true, same = true;
  for (size_t d = 0; d < dims; ++d) {
    const int64_t out = (in[d] + s[d] - 1) / s[d];
    const int64_t total = std::max<int64_t>((out - 1) * s[d] + k[d] - in[d], 0);
    // SAME_LOWER puts the extra pad first: the same as kiln's only when the total is even.
    const int64_t before = auto_pad == "SAME_LOWER" ? total - total / 2 : total / 2;
    if (auto_pad == "SAME_LOWER") pads[d] = before, pads[d + dims] = total - before;
    zero = zero && pads[d] == 0 && pads[d + dims] == 0;
    same = same && pads[d] == total / 2 && pads[d + dims] == total - total / 2;
  }
  if (zero) return "valid";
  if (same) return "same";
  fail("pads " + shape_str(pads) + (auto_pad == "NOTSET" ? "" : " (auto_pad " + auto_pad + ")") +
       " are neither valid nor same padding for input " + shape_str(in) + " (kiln has those two)");
}

YAML::Node int_list(const std::vector<int64_t>& v) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (int64_t x : v) n.push_back(x);
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

// Conv: W [M, C/group, k...] -> kiln [k..., C, M] (depthwise, group = C = M: [kh, kw, C]).
void Converter::conv() {
  const Value& v = input();
  if (v.layout != Layout::kChannelsFirst)
    fail("input " + shape_str(v.onnx) + " is not a channels-first image or sequence");
  const Tensor& w = constant(1, "the weight W");
  const size_t dims = v.onnx.size() - 1;
  if (dims < 1 || dims > 2 || static_cast<size_t>(w.ndim()) != dims + 2)
    fail("weight " + shape_str(w.shape()) + " for input " + shape_str(v.onnx) +
         " (kiln has 1-d and 2-d convolutions)");
  const int64_t m = w.dim(0), cg = w.dim(1), c = v.onnx[0], group = attr_int(*node_, "group", 1);
  for (int64_t d : attr_ints(*node_, "dilations", {}))
    if (d != 1) fail("dilations " + shape_str(attr_ints(*node_, "dilations", {})) + " (kiln has 1)");
  const bool depthwise = group > 1 && group == c && m == c && cg == 1 && dims == 2;
  if (!depthwise && (group != 1 || cg != c))
    fail("group " + std::to_string(group) + " with weight " + shape_str(w.shape()) + " for " +
         std::to_string(c) + " channels (kiln has group 1 and depthwise)");
  std::vector<int64_t> k(w.shape().begin() + 2, w.shape().end());
  const std::vector<int64_t> s = attr_ints(*node_, "strides", std::vector<int64_t>(dims, 1));
  const Shape in(v.onnx.begin() + 1, v.onnx.end());
  const std::string pad = padding(in, k, s);
  const int64_t taps = shape_numel(k);
  Tensor kw(depthwise ? Shape{k[0], k[1], c} : [&] {
    Shape ks = k;
    ks.push_back(c), ks.push_back(m);
    return ks;
  }());
  for (int64_t o = 0; o < m; ++o)
    for (int64_t i = 0; i < cg; ++i)
      for (int64_t t = 0; t < taps; ++t) {
        const float x = w[(o * cg + i) * taps + t];
        if (depthwise)
          kw[t * c + o] = x;
        else
          kw[(t * c + i) * m + o] = x;
      }
  Value o;
  o.layout = Layout::kChannelsFirst;
  o.onnx = {m};
  for (size_t d = 0; d < dims; ++d) {
    const int64_t n = conv_out_size(in[d], k[d], s[d], pad == "same" ? Padding::kSame : Padding::kValid);
    o.onnx.push_back(n), o.kiln.push_back(n);
  }
  o.kiln.push_back(m);
  YAML::Node l = add_layer(depthwise ? "depthwise_conv2d" : dims == 1 ? "conv1d" : "conv2d", &o);
  if (!depthwise) l["filters"] = m;
  l["kernel_size"] = int_list(k);
  l["strides"] = int_list(s);
  l["padding"] = pad;
  l["use_bias"] = has_input(2);
  l["activation"] = "linear";
  out_.params[o.layer + ".weight"] = kw;
  if (has_input(2)) {
    const Tensor& b = constant(2, "the bias B");
    if (b.size() != m)
      fail("bias has " + std::to_string(b.size()) + " values for " + std::to_string(m) + " filters");
    out_.params[o.layer + ".bias"] = b.reshaped({m});
  }
  produce(o);
}

void Converter::pool(bool global) {
  const Value& v = input();
  if (v.layout != Layout::kChannelsFirst)
    fail("input " + shape_str(v.onnx) + " is not a channels-first image or sequence");
  const size_t dims = v.onnx.size() - 1;
  Value o;
  if (global) {  // ONNX keeps [C, 1, 1]; kiln gives [C], the same elements in the same order
    o.onnx = {v.onnx[0]};
    o.onnx.insert(o.onnx.end(), dims, 1);
    o.kiln = {v.onnx[0]};
    add_layer("global_avg_pool", &o);
    return produce(o);
  }
  const bool max = node_->op_type() == "MaxPool";
  if (attr_int(*node_, "ceil_mode", 0) != 0) fail("ceil_mode = 1 (kiln rounds the output size down)");
  for (int64_t d : attr_ints(*node_, "dilations", {}))
    if (d != 1) fail("dilations (kiln has 1)");
  if (max && node_->output_size() > 1 && uses_[node_->output(1)] > 0) fail("its Indices output is used");
  const std::vector<int64_t> k = attr_ints(*node_, "kernel_shape", {});
  if (k.size() != dims) fail("kernel_shape " + shape_str(k) + " for input " + shape_str(v.onnx));
  const std::vector<int64_t> s = attr_ints(*node_, "strides", std::vector<int64_t>(dims, 1));
  const Shape in(v.onnx.begin() + 1, v.onnx.end());
  const std::string pad = padding(in, k, s);
  if (!max && pad == "same" && attr_int(*node_, "count_include_pad", 0) != 0)
    fail("count_include_pad = 1 with padding (kiln averages the real inputs only)");
  o.layout = Layout::kChannelsFirst;
  o.onnx = {v.onnx[0]};
  for (size_t d = 0; d < dims; ++d) {
    const int64_t n = conv_out_size(in[d], k[d], s[d], pad == "same" ? Padding::kSame : Padding::kValid);
    o.onnx.push_back(n), o.kiln.push_back(n);
  }
  o.kiln.push_back(v.onnx[0]);
  YAML::Node l = add_layer(std::string(max ? "max" : "avg") + "_pool" + std::to_string(dims) + "d", &o);
  l["pool_size"] = int_list(k);
  l["strides"] = int_list(s);
  l["padding"] = pad;
  produce(o);
}

}  // namespace kiln::import::onnx_detail

namespace kiln::import {

Imported import_onnx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open '" + path + "'");
  onnx::ModelProto m;
  if (!m.ParseFromIstream(&in)) throw InputError(path + ": not an ONNX model (the protobuf does not parse)");
  if (!m.has_graph() || m.graph().node_size() == 0) throw InputError(path + ": not an ONNX model (no graph)");
  Imported out;
  out.source = path;
  onnx_detail::Converter(m, path, out).run();
  return out;
}

}  // namespace kiln::import
