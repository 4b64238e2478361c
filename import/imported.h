// A model read from another framework's files, as kiln layers: the `model:` section of a run config (one YAML
// mapping per layer), the per-sample input shape (channels-last) and the weights under kiln's parameter
// names ("fc1.weight", "bn1.running_mean"). The Keras and ONNX readers fill one; to_checkpoint() turns it
// into the checkpoint //tools:train --resume and //tools:export read.
//
//   Imported m = import_keras("KERAS_3layer.json", "KERAS_3layer_weights.h5");
//   train::Checkpoint ck = to_checkpoint(m, ImportOptions{});
//   train::save_checkpoint(ck, "runs/jet/model.ckpt");
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

#include "engine/train/checkpoint.h"

namespace kiln::import {

struct Imported {
  YAML::Node layers{YAML::NodeType::Sequence};  // kiln layer mappings, in order
  Shape input_shape;                            // per sample, channels-last
  std::map<std::string, Tensor> params, buffers;
  // The source model takes channels-first input ([C, H, W] / [C, L], PyTorch): kiln's model takes the
  // channels-last transpose, and --check transposes the user's inputs the same way.
  bool channels_first_input = false;
  std::string source;              // the file(s), for messages
  std::vector<std::string> notes;  // conversions the user should know about, one line each

  // Appends a layer mapping {name, type, ...}; returns it for the layer's other keys.
  YAML::Node add_layer(const std::string& name, const std::string& type);
  // The last layer's mapping (to set its activation); the model must have one.
  YAML::Node last_layer();
};

struct ImportOptions {
  std::vector<float> input_scale;   // empty: identity; one value for every feature, or one per feature
  std::vector<float> input_offset;  // subtracted before scaling (kiln's standardisation: (x - mean) * scale)
  std::vector<std::string> class_names;  // empty: "0".."K-1" from the output width
  // A run config for fine-tuning (finetune.h): stored in the checkpoint, its compression attached.
  std::string config_text, config_name;
};

// Builds kiln's model from `m`, loads the weights into it (every parameter and buffer must match by name and
// shape) and captures the checkpoint, with the standardisation and class names of `o`. InputError naming
// the source file on any mismatch.
train::Checkpoint to_checkpoint(const Imported& m, const ImportOptions& o);

// The model's `model:` section as YAML text (written beside the checkpoint for configs that resume it).
std::string model_section_yaml(const Imported& m);

Imported import_keras(const std::string& json_or_h5, const std::string& weights_h5);
Imported import_onnx(const std::string& path);

}  // namespace kiln::import
