// IDX (the MNIST format): a big-endian header [magic, counts...] and then uint8 data. Magic 2051 =
// 0x00000803 (uint8, 3 dims: N, rows, cols), 2049 = 0x00000801 (uint8, 1 dim: N).
#include <cstdint>
#include <string>

#include "engine/data/gzfile.h"
#include "engine/data/loaders.h"
#include "engine/data/util.h"

namespace kiln::data {

using detail::fail;

namespace {

constexpr uint32_t kImagesMagic = 2051, kLabelsMagic = 2049;

uint32_t be32(const std::string& b, size_t off) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data()) + off;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reads an IDX file and checks its magic, header and size. Returns the dimensions; the data starts
// at 4 + 4 * dims.size().
std::vector<uint64_t> read_idx(const std::string& path, const std::string& bytes, uint32_t magic, int ndim,
                               const char* kind) {
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  if (bytes.size() < 4)
    fail(path + ": too short for an IDX " + kind + " file (" + std::to_string(bytes.size()) + " bytes)");
  const uint32_t found = be32(bytes, 0);
  if (found != magic)
    fail(path + ": bad magic number " + std::to_string(found) + " (expected " + std::to_string(magic) +
         " for an IDX " + kind + " file)");
  if (bytes.size() < header)
    fail(path + ": truncated IDX header (" + std::to_string(bytes.size()) + " bytes, expected at least " +
         std::to_string(header) + ")");
  std::vector<uint64_t> dims;
  uint64_t count = 1;
  std::string dims_text;
  for (int k = 0; k < ndim; ++k) {
    dims.push_back(be32(bytes, 4 + 4 * static_cast<size_t>(k)));
    // Saturates instead of overflowing: a huge count then reads as "truncated".
    count = dims.back() != 0 && count > UINT64_MAX / dims.back() ? UINT64_MAX : count * dims.back();
    dims_text += (k ? "x" : "") + std::to_string(dims.back());
  }
  if (ndim == 3 && (dims[1] == 0 || dims[2] == 0 || dims[1] > (1u << 16) || dims[2] > (1u << 16)))
    fail(path + ": implausible image size " + std::to_string(dims[1]) + "x" + std::to_string(dims[2]));
  const uint64_t have = bytes.size() - header;
  if (have != count)
    fail(path + ": " + (have < count ? "truncated" : "trailing data") + ": the header says " + dims_text +
         " (" + std::to_string(count) + " bytes of data) but " + std::to_string(have) +
         " bytes follow the header");
  return dims;
}

}  // namespace

Dataset load_idx(const std::string& images_path, const std::string& labels_path) {
  const std::string img = read_file(images_path);
  std::vector<uint64_t> idim = read_idx(images_path, img, kImagesMagic, 3, "images");
  const std::string lab = read_file(labels_path);
  std::vector<uint64_t> ldim = read_idx(labels_path, lab, kLabelsMagic, 1, "labels");
  if (idim[0] != ldim[0])
    fail(images_path + " has " + std::to_string(idim[0]) + " images but " + labels_path + " has " +
         std::to_string(ldim[0]) + " labels");
  if (idim[0] == 0) fail(images_path + ": no images");

  const auto n = static_cast<int64_t>(idim[0]), rows = static_cast<int64_t>(idim[1]),
             cols = static_cast<int64_t>(idim[2]);
  Dataset d;
  d.source = images_path + " + " + labels_path;
  d.x = Tensor({n, rows, cols, 1});
  const auto* px = reinterpret_cast<const unsigned char*>(img.data()) + 16;
  float* out = d.x.data();
  float scaled[256];  // v / 255, exactly 1 for 255
  for (int v = 0; v < 256; ++v) scaled[v] = static_cast<float>(v) / 255.f;
  for (int64_t i = 0; i < d.x.size(); ++i) out[i] = scaled[px[i]];
  const auto* pl = reinterpret_cast<const unsigned char*>(lab.data()) + 8;
  d.labels.assign(pl, pl + n);
  d.class_names = detail::index_class_names(d.labels);
  return d;
}

}  // namespace kiln::data
