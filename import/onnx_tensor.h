// ONNX protobuf values as kiln values: TensorProto initializers and Constant outputs as float tensors or
// integer lists, node attributes with defaults. Errors name the node (or initializer) and its op type.
#pragma once
#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "engine/tensor.h"

namespace kiln::import {

// "node 'Conv_3' (Conv)", or "node #4 (Relu)" for an unnamed node: how messages name a node.
std::string node_label(const onnx::NodeProto& n, int index);

// float, double, int32/64 and (u)int8/16 tensors, from typed fields or raw_data (little-endian). `who` names
// the tensor in messages. External data (data_location EXTERNAL) is refused.
Tensor tensor_value(const onnx::TensorProto& t, const std::string& who);
std::vector<int64_t> int_values(const onnx::TensorProto& t, const std::string& who);

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name);
int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t fallback);
float attr_float(const onnx::NodeProto& n, const std::string& name, float fallback);
std::string attr_string(const onnx::NodeProto& n, const std::string& name, const std::string& fallback);
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name,
                               const std::vector<int64_t>& fallback);

}  // namespace kiln::import
