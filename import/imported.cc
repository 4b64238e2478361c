#include "import/imported.h"

#include <cmath>

#include "compress/hgq.h"
#include "engine/check.h"
#include "engine/data/dataset.h"
#include "import/finetune.h"

namespace kiln::import {

YAML::Node Imported::add_layer(const std::string& name, const std::string& type) {
  YAML::Node l;
  l["name"] = name;
  l["type"] = type;
  layers.push_back(l);
  return l;
}

YAML::Node Imported::last_layer() {
  KILN_CHECK(layers.size() > 0, "last_layer() of an empty model");
  return layers[layers.size() - 1];
}

std::string model_section_yaml(const Imported& m) {
  YAML::Node root, model;
  model["layers"] = m.layers;
  root["model"] = model;
  YAML::Emitter e;
  e << root;
  return std::string(e.c_str()) + "\n";
}

namespace {

// One value for every feature, or one per feature.
std::vector<float> per_feature(const std::vector<float>& v, int64_t d, float fallback,
                               const std::string& flag) {
  if (v.empty()) return std::vector<float>(static_cast<size_t>(d), fallback);
  if (v.size() == 1) return std::vector<float>(static_cast<size_t>(d), v[0]);
  if (static_cast<int64_t>(v.size()) != d)
    throw InputError(flag + " has " + std::to_string(v.size()) + " values; the model takes " +
                     std::to_string(d) + " input features (give one value, or one per feature)");
  return v;
}

}  // namespace

train::Checkpoint to_checkpoint(const Imported& m, const ImportOptions& o) {
  train::Checkpoint ck;
  {
    YAML::Node spec;
    spec["layers"] = m.layers;
    YAML::Emitter e;
    e << spec;
    ck.model_yaml = e.c_str();
  }
  ck.input_shape = m.input_shape;
  ck.params = m.params;
  ck.buffers = m.buffers;
  ck.path = m.source;
  // The model is built and loaded exactly as --resume and export will: what fails here would fail there.
  std::unique_ptr<nn::Model> model;
  try {
    model = train::restore_model(ck);
  } catch (const ShapeError& e) {
    throw InputError(m.source + ": the converted model does not fit together: " + e.what());
  }
  const int64_t d = shape_numel(m.input_shape);
  data::Standardizer st;
  st.mean = per_feature(o.input_offset, d, 0.f, "--input-offset");
  st.scale = per_feature(o.input_scale, d, 1.f, "--input-scale");
  for (float s : st.scale)
    if (!(s > 0.f) || !std::isfinite(s)) throw InputError("--input-scale values must be finite and > 0");
  data::Dataset reference;  // names only: an imported model has no data
  const int64_t k = shape_numel(model->output_shape());
  const YAML::Node last = m.layers[m.layers.size() - 1];
  const std::string last_act =
      last["activation"] ? last["activation"].as<std::string>() : last["type"].as<std::string>();
  if (!o.class_names.empty()) {
    if (static_cast<int64_t>(o.class_names.size()) != k && !(k == 1 && o.class_names.size() == 2))
      throw InputError("--class-names has " + std::to_string(o.class_names.size()) +
                       " names; the model has " + std::to_string(k) + " outputs" +
                       (k == 1 ? " (a single sigmoid output takes 2 names)" : ""));
    reference.class_names = o.class_names;
  } else if (k > 1 || last_act == "sigmoid") {
    for (int64_t i = 0; i < std::max<int64_t>(k, 2); ++i) reference.class_names.push_back(std::to_string(i));
  }
  // Quantizers and masks attached after the imported weights are in: their state is captured too.
  compress::AttachedCompression compression;  // kept alive until the checkpoint is made
  if (!o.config_text.empty())
    compression = compress::attach_compression(*model, o.config_text, o.config_name);
  train::Checkpoint out = train::make_checkpoint(*model, st, reference);
  out.config_yaml = o.config_text;
  out.task = reference.class_names.empty() ? "regression" : "classification";
  out.seed = 0;
  return out;
}

}  // namespace kiln::import
