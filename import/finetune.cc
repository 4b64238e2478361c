#include "import/finetune.h"

#include <yaml-cpp/yaml.h>

namespace kiln::import {

Imported for_training(const Imported& m, const std::string& base_path) {
  // YAML nodes are references (assigning one aliases it): the copy is built from clones.
  std::vector<YAML::Node> layers;
  for (size_t i = 0; i < m.layers.size(); ++i) layers.push_back(YAML::Clone(m.layers[i]));
  const std::string loss =
      Config::load_file(base_path).child("training").get<std::string>("loss", "cross_entropy");
  const std::string fused = loss == "cross_entropy"          ? "softmax"
                            : loss == "binary_cross_entropy" ? "sigmoid"
                                                             : "";
  std::string dropped;
  if (!fused.empty() && layers.size() > 1 && layers.back()["type"].as<std::string>() == fused) {
    dropped = layers.back()["name"].as<std::string>();
    layers.pop_back();
  } else if (!fused.empty() && layers.back()["activation"] &&
             layers.back()["activation"].as<std::string>() == fused) {
    dropped = layers.back()["name"].as<std::string>();
    layers.back()["activation"] = "linear";
  }
  Imported out;
  out.input_shape = m.input_shape, out.params = m.params, out.buffers = m.buffers;
  out.channels_first_input = m.channels_first_input, out.source = m.source, out.notes = m.notes;
  for (const YAML::Node& l : layers) out.layers.push_back(l);
  if (!dropped.empty())
    out.notes.push_back(
        "for training with loss " + loss + ", the final " + fused + " (layer '" + dropped +
        "') is left out: kiln's loss applies it to the logits; the predicted class is unchanged");
  return out;
}

std::string config_with_model(const std::string& base_path, const Imported& m) {
  Config base = Config::load_file(base_path);  // InputError naming the file on bad YAML
  YAML::Node root = YAML::Clone(base.node());
  if (!root.IsMap()) throw InputError(base_path + ": a run config must be a YAML mapping");
  YAML::Node model;
  model["layers"] = m.layers;
  root["model"] = model;
  YAML::Emitter e;
  e << root;
  return std::string(e.c_str()) + "\n";
}

}  // namespace kiln::import
