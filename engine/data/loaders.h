// Loaders for the dataset files users bring: CSV (e.g. OpenML's jet-tagging hls4ml_lhc_jets_hlf,
// sklearn's digits.csv.gz), IDX (MNIST, Fashion-MNIST) and NumPy .npy. Every loader reads plain or
// gzipped files alike and throws InputError with one line naming the file, line, column and value
// that are wrong; none of them crashes on a bad file.
//
//   CsvOptions opt;
//   opt.path = "hls4ml_lhc_jets_hlf.csv";
//   opt.label = "class";                 // g, q, t, w, z -> classes 0..4
//   Dataset jets = load_csv(opt);        // x: [N, 16]
//
//   Dataset fm = load_idx("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");  // x: [N, 28, 28, 1]
#pragma once
#include <string>
#include <vector>

#include "engine/data/dataset.h"

namespace kiln::data {

struct CsvOptions {
  std::string path;                   // plain or .gz
  bool header = true;                 // the first line holds column names
  char delimiter = ',';               // ' ' also accepts runs of spaces and tabs
  std::vector<std::string> features;  // column names; with header=false, 0-based column indices as text
                                      // ("-1" = last). Empty: every column but the label.
  std::string label;                  // column name, or index as text with header=false. Empty: last column.
  bool regression = false;            // the label is a number to regress (targets [N, 1]), not a class
};

// Fields may be quoted with " or ' (a doubled quote inside is one quote character). Blank lines and
// \r\n line endings are accepted. Class labels may be any text; the classes are the distinct labels,
// sorted numerically when all are integers and lexicographically otherwise. Features must be finite
// numbers. With header=false, feature_names are "col0", "col1", ... (0-based column index).
Dataset load_csv(const CsvOptions& opt);

// IDX files (magic 2051: uint8 images [N, rows, cols]; 2049: uint8 labels [N]), gzipped or plain.
// x is [N, rows, cols, 1] scaled to [0, 1]; labels are used as class indices, class_names "0".."max".
Dataset load_idx(const std::string& images_path, const std::string& labels_path);

// NumPy .npy files (format versions 1-3, little-endian C order; dtypes float32, float64, int8-64,
// uint8-64, bool; at most 64 dimensions). x: [N, ...] (a 1-d x becomes [N, 1]). Classification: y is [N]
// (or [N, 1]) of integers in [0, 65536) (integral floats accepted), used as class indices with
// class_names "0".."max".
// Regression: y is [N] or [N, T] -> targets [N, 1] or [N, T].
Dataset load_npy(const std::string& x_path, const std::string& y_path, bool regression);

}  // namespace kiln::data
