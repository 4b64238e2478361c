#include "import/onnx_tensor.h"

#include <cstring>

#include "engine/check.h"

namespace kiln::import {

std::string node_label(const onnx::NodeProto& n, int index) {
  return (n.name().empty() ? "node #" + std::to_string(index) : "node '" + n.name() + "'") + " (" +
         n.op_type() + ")";
}

namespace {

template <class T>
std::vector<double> raw_as(const std::string& raw, const std::string& who) {
  if (raw.size() % sizeof(T) != 0)
    throw InputError(who + ": raw data of " + std::to_string(raw.size()) +
                     " bytes is not a whole number of " + std::to_string(sizeof(T)) + "-byte values");
  std::vector<double> out(raw.size() / sizeof(T));
  for (size_t i = 0; i < out.size(); ++i) {
    T v;
    std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));  // ONNX raw data is little-endian, as is x86
    out[i] = static_cast<double>(v);
  }
  return out;
}

std::vector<double> values(const onnx::TensorProto& t, const std::string& who) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    throw InputError(who + ": stored in an external data file; save the model with its weights inside");
  const bool raw = t.has_raw_data();
  using TP = onnx::TensorProto;
  switch (t.data_type()) {
    case TP::FLOAT:
      return raw ? raw_as<float>(t.raw_data(), who)
                 : std::vector<double>(t.float_data().begin(), t.float_data().end());
    case TP::DOUBLE:
      return raw ? raw_as<double>(t.raw_data(), who)
                 : std::vector<double>(t.double_data().begin(), t.double_data().end());
    case TP::INT64:
      return raw ? raw_as<int64_t>(t.raw_data(), who)
                 : std::vector<double>(t.int64_data().begin(), t.int64_data().end());
    case TP::INT32:
      return raw ? raw_as<int32_t>(t.raw_data(), who)
                 : std::vector<double>(t.int32_data().begin(), t.int32_data().end());
    case TP::INT8:
      return raw ? raw_as<int8_t>(t.raw_data(), who)
                 : std::vector<double>(t.int32_data().begin(), t.int32_data().end());
    case TP::UINT8:
      return raw ? raw_as<uint8_t>(t.raw_data(), who)
                 : std::vector<double>(t.int32_data().begin(), t.int32_data().end());
    default:
      throw InputError(who + ": data type " + TP::DataType_Name(static_cast<TP::DataType>(t.data_type())) +
                       " (kiln reads float, double and integer tensors)");
  }
}

}  // namespace

Tensor tensor_value(const onnx::TensorProto& t, const std::string& who) {
  std::vector<double> v = values(t, who);
  Shape s(t.dims().begin(), t.dims().end());
  for (int64_t d : s)
    if (d < 0) throw InputError(who + ": negative dimension in " + shape_str(s));
  if (shape_numel(s) != static_cast<int64_t>(v.size()))
    throw InputError(who + ": " + std::to_string(v.size()) + " values for shape " + shape_str(s));
  return Tensor(s, std::vector<float>(v.begin(), v.end()));
}

std::vector<int64_t> int_values(const onnx::TensorProto& t, const std::string& who) {
  std::vector<double> v = values(t, who);
  return std::vector<int64_t>(v.begin(), v.end());
}

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t fallback) {
  const auto* a = find_attr(n, name);
  return a ? a->i() : fallback;
}

float attr_float(const onnx::NodeProto& n, const std::string& name, float fallback) {
  const auto* a = find_attr(n, name);
  return a ? a->f() : fallback;
}

std::string attr_string(const onnx::NodeProto& n, const std::string& name, const std::string& fallback) {
  const auto* a = find_attr(n, name);
  return a ? a->s() : fallback;
}

std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name,
                               const std::vector<int64_t>& fallback) {
  const auto* a = find_attr(n, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

}  // namespace kiln::import
