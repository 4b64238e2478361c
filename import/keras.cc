// Keras models (Keras 2 and Keras 3 layer configs, Sequential or a functional chain) to kiln layers.
// Keras is channels-last and stores Dense/Conv kernels as [in, out] / [k..., in, out], kiln's own layouts, so
// weights are copied unchanged; only DepthwiseConv2D's [kh, kw, C, 1] loses its last axis.
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/nn/model.h"
#include "import/imported.h"
#include "import/keras_weights.h"

namespace kiln::import {

namespace {

using Json = nlohmann::json;

struct Ctx {
  std::string file;  // the JSON or .h5 holding the architecture
  Imported* out;
  const KerasWeights* weights;
};

[[noreturn]] void unsupported(const Ctx& c, const std::string& name, const std::string& cls,
                              const std::string& why) {
  throw InputError(c.file + ": layer '" + name + "' (" + cls + "): " + why);
}

// Keras 2 writes "relu"; Keras 3 may write {"class_name": "function", "config": "relu"} or a registered name.
std::string activation_of(const Ctx& c, const std::string& name, const std::string& cls, const Json& cfg,
                          const char* key = "activation") {
  if (!cfg.contains(key)) return "linear";
  const Json& a = cfg[key];
  std::string act = a.is_string() ? a.get<std::string>()
                    : a.is_object() && a.contains("config") && a["config"].is_string()
                        ? a["config"].get<std::string>()
                        : "";
  if (act == "relu" || act == "sigmoid" || act == "tanh" || act == "softmax" || act == "linear") return act;
  unsupported(c, name, cls,
              "activation '" + (act.empty() ? a.dump() : act) +
                  "' is not supported (kiln imports linear, relu, sigmoid, tanh, softmax)");
}

// An integer or a list of integers (kernel_size, strides, pool_size) as a list of `n`.
std::vector<int> sizes(const Ctx& c, const std::string& name, const std::string& cls, const Json& cfg,
                       const char* key, size_t n, const std::vector<int>& fallback) {
  if (!cfg.contains(key) || cfg[key].is_null()) return fallback;
  std::vector<int> v =
      cfg[key].is_number() ? std::vector<int>(n, cfg[key].get<int>()) : cfg[key].get<std::vector<int>>();
  if (v.size() != n)
    unsupported(c, name, cls, std::string(key) + " " + cfg[key].dump() + " has the wrong length");
  return v;
}

void check_channels_last(const Ctx& c, const std::string& name, const std::string& cls, const Json& cfg) {
  if (cfg.contains("data_format") && cfg["data_format"].is_string() && cfg["data_format"] != "channels_last")
    unsupported(c, name, cls, "data_format " + cfg["data_format"].dump() + " (kiln is channels_last)");
}

std::string padding_of(const Ctx& c, const std::string& name, const std::string& cls, const Json& cfg) {
  std::string p = cfg.value("padding", "valid");
  if (p != "valid" && p != "same") unsupported(c, name, cls, "padding '" + p + "' (kiln has valid and same)");
  return p;
}

YAML::Node yaml_list(const std::vector<int>& v) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (int x : v) n.push_back(x);
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

// Dense, Conv1D/2D, DepthwiseConv2D: kernel (+ bias) and an activation.
void convert_kernel_layer(const Ctx& c, const std::string& name, const std::string& cls, const Json& cfg) {
  const bool bias = cfg.value("use_bias", true);
  std::vector<std::string> names{cls == "DepthwiseConv2D" ? "depthwise_kernel" : "kernel"};
  if (bias) names.push_back("bias");
  std::vector<Tensor> w = c.weights->get(name, cls, names);
  YAML::Node l;
  if (cls == "Dense") {
    l = c.out->add_layer(name, "dense");
    l["units"] = cfg.at("units").get<int>();
  } else {
    check_channels_last(c, name, cls, cfg);
    const size_t dims = cls == "Conv1D" ? 1 : 2;
    for (int d : sizes(c, name, cls, cfg, "dilation_rate", dims, std::vector<int>(dims, 1)))
      if (d != 1)
        unsupported(c, name, cls, "dilation_rate " + cfg["dilation_rate"].dump() + " (kiln has 1 only)");
    if (cfg.value("groups", 1) != 1)
      unsupported(c, name, cls, "groups " + cfg["groups"].dump() + " (kiln has 1)");
    if (cls == "DepthwiseConv2D") {
      if (cfg.value("depth_multiplier", 1) != 1)
        unsupported(c, name, cls, "depth_multiplier " + cfg["depth_multiplier"].dump() + " (kiln has 1)");
      l = c.out->add_layer(name, "depthwise_conv2d");
      Shape s = w[0].shape();
      s.pop_back();  // [kh, kw, C, 1] -> [kh, kw, C]
      w[0] = w[0].reshaped(s);
    } else {
      l = c.out->add_layer(name, dims == 1 ? "conv1d" : "conv2d");
      l["filters"] = cfg.at("filters").get<int>();
    }
    l["kernel_size"] = yaml_list(sizes(c, name, cls, cfg, "kernel_size", dims, {}));
    l["strides"] = yaml_list(sizes(c, name, cls, cfg, "strides", dims, std::vector<int>(dims, 1)));
    l["padding"] = padding_of(c, name, cls, cfg);
  }
  l["use_bias"] = bias;
  l["activation"] = activation_of(c, name, cls, cfg);
  c.out->params[name + ".weight"] = w[0];
  if (bias) c.out->params[name + ".bias"] = w[1];
}

// The per-sample output shape of the layers converted so far (the next layer's input).
Shape shape_so_far(const Imported& m) {
  if (m.layers.size() == 0) return m.input_shape;
  YAML::Node spec;
  spec["layers"] = YAML::Clone(m.layers);
  try {
    return nn::Model::from_config(Config(spec, m.source, "model"), m.input_shape, 0)->output_shape();
  } catch (const ShapeError& e) {
    throw InputError(m.source + ": the converted layers do not fit together: " + e.what());
  }
}

void convert_batch_norm(const Ctx& c, const std::string& name, const std::string& cls, const Json& cfg) {
  // Keras 2 may write the channel axis as a positive index (batch = axis 0): the rank of this layer's input.
  const Json& axis = cfg.value("axis", Json(-1));
  const Json& a0 = axis.is_array() && axis.size() == 1 ? axis[0] : axis;
  const bool last = a0.is_number_integer() &&
                    (a0.get<int>() == -1 || a0.get<int>() == static_cast<int>(shape_so_far(*c.out).size()));
  if (!last) unsupported(c, name, cls, "axis " + axis.dump() + " (kiln normalises the last, channel axis)");
  const bool scale = cfg.value("scale", true), center = cfg.value("center", true);
  std::vector<std::string> names;
  if (scale) names.push_back("gamma");
  if (center) names.push_back("beta");
  names.push_back("moving_mean");
  names.push_back("moving_variance");
  std::vector<Tensor> w = c.weights->get(name, cls, names);
  const int64_t ch = w.back().size();
  size_t i = 0;
  c.out->params[name + ".gamma"] = scale ? w[i++] : Tensor({ch}, 1.f);
  c.out->params[name + ".beta"] = center ? w[i++] : Tensor({ch}, 0.f);
  c.out->buffers[name + ".running_mean"] = w[i++];
  c.out->buffers[name + ".running_var"] = w[i++];
  YAML::Node l = c.out->add_layer(name, "batch_norm");
  l["epsilon"] = cfg.value("epsilon", 1e-3);
  l["momentum"] = cfg.value("momentum", 0.99);
}

// Activation, ReLU, LeakyReLU, Softmax layers.
void convert_activation(const Ctx& c, const std::string& name, const std::string& cls, const Json& cfg) {
  std::string act;
  float alpha = 0.f;
  if (cls == "Activation") {
    act = activation_of(c, name, cls, cfg);
  } else if (cls == "Softmax") {
    if (cfg.value("axis", -1) != -1) unsupported(c, name, cls, "axis " + cfg["axis"].dump() + " (kiln: -1)");
    act = "softmax";
  } else {  // ReLU (Keras 2: negative_slope, threshold, max_value) or LeakyReLU (alpha / negative_slope)
    alpha = cfg.contains("alpha") ? cfg["alpha"].get<float>()
                                  : cfg.value("negative_slope", cls == "ReLU" ? 0.f : 0.3f);
    if (cfg.contains("max_value") && !cfg["max_value"].is_null())
      unsupported(c, name, cls, "max_value " + cfg["max_value"].dump() + " (kiln's relu is unbounded)");
    if (cfg.value("threshold", 0.0) != 0.0) unsupported(c, name, cls, "threshold " + cfg["threshold"].dump());
    act = alpha == 0.f ? "relu" : "leaky_relu";
  }
  if (act == "linear") {
    c.out->notes.push_back("layer '" + name + "' (" + cls + ", linear) is the identity: left out");
    return;
  }
  YAML::Node l = c.out->add_layer(name, act);
  if (act == "leaky_relu") l["alpha"] = alpha;
}

void convert_structure(const Ctx& c, const std::string& name, const std::string& cls, const Json& cfg) {
  if (cls == "Flatten") {
    check_channels_last(c, name, cls, cfg);
    c.out->add_layer(name, "flatten");
  } else if (cls == "Dropout") {
    c.out->add_layer(name, "dropout")["rate"] = cfg.at("rate").get<double>();
  } else if (cls == "Reshape") {
    YAML::Node shape(YAML::NodeType::Sequence);
    for (int v : cfg.at("target_shape").get<std::vector<int>>()) shape.push_back(v);
    shape.SetStyle(YAML::EmitterStyle::Flow);
    c.out->add_layer(name, "reshape")["shape"] = shape;
  } else if (cls.rfind("Global", 0) == 0) {  // GlobalAveragePooling1D/2D
    check_channels_last(c, name, cls, cfg);
    if (cfg.value("keepdims", false))
      unsupported(c, name, cls, "keepdims true (kiln drops the spatial axes)");
    c.out->add_layer(name, "global_avg_pool");
  } else {  // MaxPooling1D/2D, AveragePooling1D/2D
    check_channels_last(c, name, cls, cfg);
    const size_t dims = cls.back() == 'D' && cls[cls.size() - 2] == '1' ? 1 : 2;
    const bool max = cls.rfind("Max", 0) == 0;
    YAML::Node l =
        c.out->add_layer(name, std::string(max ? "max" : "avg") + "_pool" + std::to_string(dims) + "d");
    std::vector<int> pool = sizes(c, name, cls, cfg, "pool_size", dims, std::vector<int>(dims, 2));
    l["pool_size"] = yaml_list(pool);
    l["strides"] = yaml_list(sizes(c, name, cls, cfg, "strides", dims, pool));
    l["padding"] = padding_of(c, name, cls, cfg);
  }
}

using Converter = void (*)(const Ctx&, const std::string&, const std::string&, const Json&);
const std::map<std::string, Converter>& converters() {
  static const std::map<std::string, Converter> k{
      {"Dense", convert_kernel_layer},
      {"Conv1D", convert_kernel_layer},
      {"Conv2D", convert_kernel_layer},
      {"DepthwiseConv2D", convert_kernel_layer},
      {"BatchNormalization", convert_batch_norm},
      {"Activation", convert_activation},
      {"ReLU", convert_activation},
      {"LeakyReLU", convert_activation},
      {"Softmax", convert_activation},
      {"Flatten", convert_structure},
      {"Dropout", convert_structure},
      {"Reshape", convert_structure},
      {"MaxPooling1D", convert_structure},
      {"MaxPooling2D", convert_structure},
      {"AveragePooling1D", convert_structure},
      {"AveragePooling2D", convert_structure},
      {"MaxPool1D", convert_structure},
      {"MaxPool2D", convert_structure},
      {"AvgPool1D", convert_structure},
      {"AvgPool2D", convert_structure},
      {"GlobalAveragePooling1D", convert_structure},
      {"GlobalAveragePooling2D", convert_structure},
  };
  return k;
}

// The names of the layers feeding `layer` in a functional model (Keras 2: [[["prev", 0, 0, {}]]]; Keras 3:
// [{"args": [{"config": {"keras_history": ["prev", 0, 0]}}]}]). Empty for Sequential layers.
std::vector<std::string> inbound(const Json& layer) {
  std::vector<std::string> out;
  if (!layer.contains("inbound_nodes")) return out;
  for (const Json& node : layer["inbound_nodes"]) {
    if (node.is_array()) {
      for (const Json& in : node)
        if (in.is_array() && !in.empty()) out.push_back(in[0].get<std::string>());
    } else if (node.is_object() && node.contains("args")) {
      std::function<void(const Json&)> walk = [&](const Json& j) {
        if (j.is_object() && j.contains("keras_history"))
          out.push_back(j["keras_history"][0].get<std::string>());
        if (j.is_object() || j.is_array())
          for (const Json& v : j) walk(v);
      };
      walk(node["args"]);
    }
  }
  return out;
}

// [None, 16] -> [16]; every axis but the batch must be known.
Shape input_shape_of(const Ctx& c, const std::string& name, const Json& batch_shape) {
  Shape s;
  for (size_t i = 1; i < batch_shape.size(); ++i) {
    if (batch_shape[i].is_null())
      throw InputError(c.file + ": layer '" + name + "': input shape " + batch_shape.dump() +
                       " has an unknown axis; kiln needs a fixed per-sample shape");
    s.push_back(batch_shape[i].get<int64_t>());
  }
  return s;
}

Json parse_json(const std::string& text, const std::string& file) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    throw InputError(file + ": not a Keras model JSON (" + std::string(e.what()) + ")");
  }
}

void convert_model(const Ctx& c, const Json& model) {
  const std::string kind = model.value("class_name", "");
  if (kind != "Sequential" && kind != "Model" && kind != "Functional")
    throw InputError(c.file + ": model class '" + kind + "' (kiln imports Sequential and functional models)");
  const Json& cfg = model.at("config");
  const Json& layers = cfg.is_array() ? cfg : cfg.at("layers");  // very old Sequential: a bare list
  std::string prev;
  for (const Json& layer : layers) {
    const std::string cls = layer.at("class_name").get<std::string>();
    const Json& lc = layer.at("config");
    const std::string name = lc.contains("name") ? lc["name"].get<std::string>() : layer.value("name", cls);
    std::vector<std::string> in = inbound(layer);
    if (!in.empty() && (in.size() != 1 || in[0] != prev))
      unsupported(c, name, cls,
                  "takes input from (" + join(in) + "); kiln imports a chain of layers, each fed by " +
                      "the one before" + (prev.empty() ? "" : " ('" + prev + "')"));
    prev = name;
    const Json* batch = lc.contains("batch_input_shape") ? &lc["batch_input_shape"]
                        : lc.contains("batch_shape")     ? &lc["batch_shape"]
                                                         : nullptr;
    if (cls == "InputLayer" || cls == "Input") {
      if (!batch) unsupported(c, name, cls, "no batch_input_shape / batch_shape");
      c.out->input_shape = input_shape_of(c, name, *batch);
      continue;
    }
    if (c.out->input_shape.empty() && batch) c.out->input_shape = input_shape_of(c, name, *batch);
    if (c.out->input_shape.empty() &&
        layer.contains("build_config"))  // Keras 3 Sequential without InputLayer
      c.out->input_shape = input_shape_of(c, name, layer["build_config"].at("input_shape"));
    if (c.out->input_shape.empty())
      unsupported(c, name, cls, "the model's input shape is not given (no InputLayer, no batch_input_shape)");
    auto it = converters().find(cls);
    if (it == converters().end())
      unsupported(c, name, cls,
                  "kiln cannot import this layer type (supported: Dense, Conv1D, Conv2D, DepthwiseConv2D, "
                  "BatchNormalization, Activation, ReLU, LeakyReLU, Softmax, Flatten, Reshape, Dropout, "
                  "MaxPooling1D/2D, AveragePooling1D/2D, GlobalAveragePooling1D/2D)");
    try {
      it->second(c, name, cls, lc);
    } catch (const Json::exception& e) {
      unsupported(c, name, cls, std::string("unexpected config: ") + e.what());
    }
  }
  if (c.out->layers.size() == 0) throw InputError(c.file + ": the model has no layers kiln can import");
}

}  // namespace

Imported import_keras(const std::string& model_path, const std::string& weights_path) {
  Imported out;
  Json model;
  std::shared_ptr<data::H5File> wfile;
  std::string root = "/";
  const bool h5 = model_path.size() > 3 && (model_path.substr(model_path.size() - 3) == ".h5" ||
                                            model_path.substr(model_path.size() - 5) == ".hdf5");
  if (h5) {  // a whole model: the architecture in the `model_config` attribute, weights in model_weights/
    wfile = std::make_shared<data::H5File>(model_path);
    if (!wfile->has_attr("/", "model_config"))
      throw InputError(model_path +
                       ": no 'model_config' attribute; a weights-only file goes with --weights, "
                       "next to the model's JSON (--keras MODEL.json)");
    std::vector<std::string> text = wfile->attr_strings("/", "model_config");
    model = parse_json(text.empty() ? "" : text[0], model_path);
    root = wfile->exists("model_weights") ? "model_weights" : "/";
    if (!weights_path.empty()) wfile = std::make_shared<data::H5File>(weights_path), root = "/";
    out.source = model_path;
  } else {
    std::ifstream in(model_path);
    if (!in) throw InputError("cannot open '" + model_path + "'");
    model = parse_json(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()),
                       model_path);
    if (weights_path.empty())
      throw InputError(model_path + ": a Keras JSON holds no weights; give --weights WEIGHTS.h5");
    wfile = std::make_shared<data::H5File>(weights_path);
    out.source = model_path + " + " + weights_path;
  }
  KerasWeights weights(wfile, root);
  Ctx c{model_path, &out, &weights};
  try {
    convert_model(c, model);
  } catch (const Json::exception& e) {
    throw InputError(model_path + ": not a Keras model config (" + std::string(e.what()) + ")");
  }
  return out;
}

}  // namespace kiln::import
