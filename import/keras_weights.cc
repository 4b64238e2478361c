#include "import/keras_weights.h"

#include <algorithm>

#include "engine/check.h"

namespace kiln::import {

namespace {

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty() || a == "/") return b;
  return a + "/" + b;
}

// "fc1/kernel:0" -> "kernel"; "dense/kernel" -> "kernel".
std::string short_name(std::string n) {
  if (size_t slash = n.rfind('/'); slash != std::string::npos) n = n.substr(slash + 1);
  if (size_t colon = n.rfind(':'); colon != std::string::npos) n = n.substr(0, colon);
  return n;
}

}  // namespace

KerasWeights::KerasWeights(std::shared_ptr<data::H5File> file, const std::string& root)
    : file_(std::move(file)), root_(root) {
  if (file_->has_attr(root_, "layer_names")) return;
  if (file_->exists(join_path(root_, "layers"))) {
    keras3_ = true;
    return;
  }
  throw InputError(file_->path() + ": not a Keras weights file (no 'layer_names' attribute" +
                   (root_ == "/" ? std::string() : " in '" + root_ + "'") + ", no 'layers' group)");
}

std::vector<Tensor> KerasWeights::get(const std::string& layer, const std::string& type,
                                      const std::vector<std::string>& names) const {
  const std::string who = "layer '" + layer + "' (" + type + ")";
  std::vector<Tensor> out;
  if (keras3_) {
    const std::string vars = join_path(root_, "layers/" + layer + "/vars");
    for (size_t i = 0; file_->exists(vars + "/" + std::to_string(i)); ++i)
      out.push_back(file_->read(vars + "/" + std::to_string(i)));
    if (out.size() != names.size())
      throw InputError(file_->path() + ": " + who + " has " + std::to_string(out.size()) + " weights in '" +
                       vars + "', expected " + std::to_string(names.size()) + " (" + join(names) + ")");
    return out;
  }
  const std::vector<std::string> layers = file_->attr_strings(root_, "layer_names");
  if (std::find(layers.begin(), layers.end(), layer) == layers.end())
    throw InputError(file_->path() + ": no weights for " + who + " (the file has layers " + join(layers) +
                     ")");
  const std::string group = join_path(root_, layer);
  const std::vector<std::string> stored = file_->attr_strings(group, "weight_names");
  std::vector<std::string> got;
  for (const std::string& w : stored) got.push_back(short_name(w));
  if (got != names)
    throw InputError(file_->path() + ": " + who + " has weights (" + join(got) + "), expected (" +
                     join(names) + ")");
  for (const std::string& w : stored) out.push_back(file_->read(group + "/" + w));
  return out;
}

}  // namespace kiln::import
