// Read-only access to HDF5 files through Debian's libhdf5 (C API): numeric datasets as float tensors and
// string attributes, with every failure an InputError naming the file, the object and what is wrong.
// Shared by `data: format: h5` (h5.cc) and the Keras importer (import/keras_weights.cc).
//
//   H5File f("jets.h5");
//   Tensor x = f.read("X_train");                                       // any integer or float dtype
//   std::vector<std::string> names = f.attr_strings("/", "layer_names");  // Keras weight files
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/tensor.h"

namespace kiln::data {

class H5File {
 public:
  // InputError "PATH: cannot open ..." when missing, "PATH: not an HDF5 file ..." when it is not one.
  explicit H5File(const std::string& path);
  ~H5File();
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;

  const std::string& path() const { return path_; }
  // True when every component of `object` ("a/b/c") exists; "/" always does.
  bool exists(const std::string& object) const;
  bool is_dataset(const std::string& object) const;
  // A numeric dataset, converted to float32 by the library; the dataset's shape ([] for a scalar).
  Tensor read(const std::string& dataset) const;
  // Same in double precision (class labels; exact for integers up to 2^53).
  std::vector<double> read_doubles(const std::string& dataset, Shape* shape) const;
  bool has_attr(const std::string& object, const std::string& attr) const;
  // A string attribute (fixed or variable length, scalar or array) as a list; a numeric attribute with no
  // elements (Keras writes `weight_names` of a layer without weights as an empty float64 array) is empty.
  std::vector<std::string> attr_strings(const std::string& object, const std::string& attr) const;
  // The names of the members of a group, in the library's (alphabetical) order.
  std::vector<std::string> children(const std::string& group) const;

 private:
  std::string path_;
  int64_t id_ = -1;  // hid_t
};

// `data: format: h5`: features and labels from two datasets of one HDF5 file (h5.cc). x is [N, ...] (a 1-d
// x becomes [N, 1]), finite. Classification: y is [N] or [N, 1] of class indices 0..K-1 (class names
// "0".."K-1"), or one-hot [N, K] (hls4ml's jet files; class names "0".."K-1" for all K columns).
// Regression: y is [N] or [N, T].
Dataset load_h5(const std::string& path, const std::string& x_name, const std::string& y_name,
                bool regression);

}  // namespace kiln::data
