// The weights of a Keras model in HDF5: a weights file (model.save_weights("w.h5"), Keras 2 layout: root
// attribute `layer_names`, per layer a group with attribute `weight_names`), the `model_weights` group of a
// whole-model .h5 (model.save("m.h5")), or Keras 3's .weights.h5 (layers/<name>/vars/0, 1, ...).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/data/hdf5_file.h"

namespace kiln::import {

class KerasWeights {
 public:
  // `root` is "/" for a weights file, "model_weights" inside a whole-model file.
  KerasWeights(std::shared_ptr<data::H5File> file, const std::string& root);
  // The layer's weights in Keras order (Dense/Conv: kernel, bias; BatchNormalization: gamma, beta,
  // moving_mean, moving_variance, without those center/scale turn off). `names` are the short names
  // expected, checked against the file's names where it stores them. InputError naming the layer, its type
  // and the file when the layer is missing or its weights differ in number.
  std::vector<Tensor> get(const std::string& layer, const std::string& type,
                          const std::vector<std::string>& names) const;
  const std::string& path() const { return file_->path(); }

 private:
  std::shared_ptr<data::H5File> file_;
  std::string root_;
  bool keras3_ = false;  // layers/<name>/vars/<i>
};

}  // namespace kiln::import
