// IDX loading (plain and gzipped) and its errors: wrong magic, truncation, count mismatch.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/data/loaders.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::data;
using kiln::testing::file_bytes;
using kiln::testing::TempDir;

namespace {
void put_be32(std::string& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b += static_cast<char>((v >> s) & 0xff);
}
// n images of rows x cols with pixel (i, r, c) = (i * 50 + r * cols + c) % 256.
std::string idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
  std::string b;
  for (uint32_t v : {2051u, n, rows, cols}) put_be32(b, v);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t k = 0; k < rows * cols; ++k) b += static_cast<char>((i * 50 + k) % 256);
  return b;
}
std::string idx_labels(const std::vector<uint8_t>& labels) {
  std::string b;
  put_be32(b, 2049);
  put_be32(b, static_cast<uint32_t>(labels.size()));
  for (uint8_t l : labels) b += static_cast<char>(l);
  return b;
}
}  // namespace

TEST_CASE("idx: plain and gzipped files give [N, rows, cols, 1] in [0, 1]") {
  TempDir tmp;
  const std::string img = idx_images(6, 3, 4), lab = idx_labels({3, 0, 1, 3, 2, 0});
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    const std::string ip = gz ? tmp.write_gz("img.gz", img) : tmp.write("img", img);
    const std::string lp = gz ? tmp.write_gz("lab.gz", lab) : tmp.write("lab", lab);
    Dataset d = load_idx(ip, lp);
    CHECK(d.x.shape() == Shape{6, 3, 4, 1});
    CHECK(d.size() == 6);
    CHECK(d.labels == std::vector<int>{3, 0, 1, 3, 2, 0});
    CHECK(d.num_classes() == 4);
    CHECK(d.class_names == std::vector<std::string>{"0", "1", "2", "3"});
    CHECK(d.x.at({0, 0, 0, 0}) == 0.f);
    CHECK(d.x.at({1, 0, 1, 0}) == 51.f / 255.f);
    CHECK(d.x.at({5, 2, 3, 0}) == static_cast<float>((5 * 50 + 11) % 256) / 255.f);
    CHECK(d.source.find(ip) != std::string::npos);
  }
  std::string full(16, '\0');
  full[2] = 8;
  full[3] = 3;
  full += std::string(2 * 2, '\xff');
  full[7] = 1;   // n = 1
  full[11] = 2;  // rows = 2
  full[15] = 2;  // cols = 2
  Dataset w = load_idx(tmp.write("white", full), tmp.write("one_label", idx_labels({0})));
  for (int64_t i = 0; i < 4; ++i) CHECK(w.x[i] == 1.f);
}

TEST_CASE("idx: bad files name the file and the values found") {
  TempDir tmp;
  const std::string img = idx_images(3, 4, 5), lab = idx_labels({1, 2, 0});
  const std::string ip = tmp.write("images.idx", img), lp = tmp.write("labels.idx", lab);
  CHECK_INPUT_ERROR(load_idx(lp, lp),
                    "labels.idx: bad magic number 2049 (expected 2051 for an IDX images file)");
  CHECK_INPUT_ERROR(load_idx(ip, ip),
                    "images.idx: bad magic number 2051 (expected 2049 for an IDX labels file)");
  const std::string cut = tmp.write("cut.idx", img.substr(0, img.size() - 7));
  CHECK_INPUT_ERROR(load_idx(cut, lp),
                    "cut.idx: truncated: the header says 3x4x5 (60 bytes of data) but 53 bytes");
  const std::string extra = tmp.write("extra.idx", lab + "zz");
  CHECK_INPUT_ERROR(load_idx(ip, extra), "extra.idx: trailing data", "3 (3 bytes of data) but 5 bytes");
  const std::string hdr = tmp.write("header.idx", img.substr(0, 10));
  CHECK_INPUT_ERROR(load_idx(hdr, lp), "header.idx: truncated IDX header (10 bytes, expected at least 16)");
  CHECK_INPUT_ERROR(load_idx(tmp.write("tiny.idx", "ab"), lp),
                    "tiny.idx: too short for an IDX images file (2 bytes)");
  const std::string two = tmp.write("two.idx", idx_labels({1, 2}));
  CHECK_INPUT_ERROR(load_idx(ip, two), ip + " has 3 images but " + two + " has 2 labels");
  // A header claiming 2^32-1 huge images must fail on the size check, not allocate.
  std::string huge;
  for (uint32_t v : {2051u, 0xffffffffu, 60000u, 60000u}) put_be32(huge, v);
  CHECK_INPUT_ERROR(load_idx(tmp.write("huge.idx", huge), lp), "huge.idx: truncated");
  std::string gz = tmp.write_gz("images.gz", img);
  const std::string gz_bytes = file_bytes(gz);
  const std::string gz_cut = tmp.write("images_cut.gz", gz_bytes.substr(0, gz_bytes.size() - 10));
  CHECK_INPUT_ERROR(load_idx(gz_cut, lp), "images_cut.gz: truncated gzip data");
  const std::string missing = (tmp.dir / "nope-idx3-ubyte.gz").string();
  CHECK_INPUT_ERROR(load_idx(missing, lp), "cannot open '" + missing + "': No such file or directory");
}
