// NPY loading (float32, float64, integer labels, regression targets) and its errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/data/loaders.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::data;
using kiln::testing::TempDir;

namespace {
// A version-1 .npy file: magic, version, header length, the dict padded with spaces to a multiple of 64.
std::string npy(const std::string& descr, const std::string& shape, const std::string& data,
                const std::string& fortran = "False", int version = 1) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  const size_t prefix = version == 1 ? 10 : 12;
  while ((prefix + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::string b = "\x93NUMPY";
  b += static_cast<char>(version);
  b += '\0';
  const size_t len = dict.size();
  for (size_t k = 0; k < (version == 1 ? 2u : 4u); ++k) b += static_cast<char>((len >> (8 * k)) & 0xff);
  return b + dict + data;
}
template <typename T>
std::string raw(const std::vector<T>& v) {
  std::string b(v.size() * sizeof(T), '\0');
  std::memcpy(&b[0], v.data(), b.size());
  return b;
}
}  // namespace

TEST_CASE("npy: float32 x with int64 labels, float64 x with regression targets") {
  TempDir tmp;
  const std::string x =
      tmp.write("x.npy", npy("<f4", "(4, 3)", raw<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.5f})));
  const std::string y = tmp.write("y.npy", npy("<i8", "(4,)", raw<int64_t>({2, 0, 1, 2})));
  Dataset d = load_npy(x, y, false);
  CHECK(d.x.shape() == Shape{4, 3});
  CHECK(d.x.at({3, 2}) == 11.5f);
  CHECK(d.labels == std::vector<int>{2, 0, 1, 2});
  CHECK(d.num_classes() == 3);
  CHECK(d.targets.empty());

  const std::string x64 =
      tmp.write("x64.npy", npy("<f8", "(2, 2, 2)", raw<double>({1, 2, 3, 4, 5, 6, 7, 0.1})));
  const std::string t1 = tmp.write("t1.npy", npy("<f8", "(2,)", raw<double>({-1.5, 2.25})));
  Dataset r = load_npy(x64, t1, true);
  CHECK(r.x.shape() == Shape{2, 2, 2});
  CHECK(r.x[7] == 0.1f);
  CHECK(r.targets.shape() == Shape{2, 1});
  CHECK(r.targets[0] == -1.5f);
  CHECK(r.labels.empty());
  const std::string t2 = tmp.write("t2.npy", npy("<f4", "(2, 3)", raw<float>({1, 2, 3, 4, 5, 6})));
  CHECK(load_npy(x64, t2, true).targets.shape() == Shape{2, 3});

  // uint8 x (1-d becomes [N, 1]), version 2 header, gzipped, integral float labels, int32 and uint8 labels.
  const std::string xu =
      tmp.write_gz("xu.npy.gz", npy("|u1", "(3,)", std::string("\x00\x80\xff", 3), "False", 2));
  const std::string yf = tmp.write("yf.npy", npy("<f8", "(3, 1)", raw<double>({1, 0, 1})));
  Dataset u = load_npy(xu, yf, false);
  CHECK(u.x.shape() == Shape{3, 1});
  CHECK(u.x[2] == 255.f);
  CHECK(u.labels == std::vector<int>{1, 0, 1});
  CHECK(
      load_npy(xu, tmp.write("y32.npy", npy("<i4", "(3,)", raw<int32_t>({0, 4, 4}))), false).num_classes() ==
      5);
  CHECK(load_npy(xu, tmp.write("yu8.npy", npy("|u1", "(3,)", "\x01\x01\x02")), false).labels[2] == 2);
}

TEST_CASE("npy: bad files name the file and the problem") {
  TempDir tmp;
  const std::string y = tmp.write("y.npy", npy("<i8", "(2,)", raw<int64_t>({0, 1})));
  const std::string x = tmp.write("x.npy", npy("<f4", "(2, 3)", raw<float>({0, 1, 2, 3, 4, 5})));
  CHECK_INPUT_ERROR(load_npy(tmp.write("magic.npy", "PK\x03\x04 not numpy at all"), y, false),
                    "magic.npy: not a .npy file (bad magic 'PK\\x03\\x04 n'");
  CHECK_INPUT_ERROR(load_npy(tmp.write("half.npy", npy("<f2", "(2, 3)", std::string(12, '\0'))), y, false),
                    "half.npy: unsupported dtype '<f2'");
  CHECK_INPUT_ERROR(load_npy(tmp.write("complex.npy", npy("<c8", "(2,)", std::string(16, '\0'))), y, false),
                    "complex.npy: unsupported dtype '<c8'");
  CHECK_INPUT_ERROR(load_npy(tmp.write("big.npy", npy(">f4", "(2, 3)", std::string(24, '\0'))), y, false),
                    "big.npy: unsupported dtype '>f4' (big-endian");
  CHECK_INPUT_ERROR(
      load_npy(tmp.write("fortran.npy", npy("<f4", "(2, 3)", std::string(24, '\0'), "True")), y, false),
      "fortran.npy: Fortran-order arrays are not supported");
  CHECK_INPUT_ERROR(
      load_npy(tmp.write("short.npy", npy("<f4", "(2, 3)", std::string(20, '\0'))), y, false),
      "short.npy: truncated: shape [2, 3] of <f4 needs 24 bytes of data but 20 follow the header");
  CHECK_INPUT_ERROR(load_npy(tmp.write("hdr.npy", npy("<f4", "(2, 3)", "").substr(0, 40)), y, false),
                    "hdr.npy: truncated .npy header");
  CHECK_INPUT_ERROR(load_npy(x, tmp.write("y3.npy", npy("<i8", "(3,)", raw<int64_t>({0, 1, 1}))), false),
                    "y3.npy: shape [3] does not match the 2 samples of " + x);
  CHECK_INPUT_ERROR(
      load_npy(tmp.write("nan.npy", npy("<f4", "(2, 3)", raw<float>({0, 1, 2, 3, 4, NAN}))), y, false),
      "nan.npy: element [1, 2] is nan");
  CHECK_INPUT_ERROR(load_npy(tmp.write("inf.npy", npy("<f8", "(2, 1)", raw<double>({1e300, 1}))), y, false),
                    "inf.npy: element [0, 0] is", "beyond float32");
  CHECK_INPUT_ERROR(load_npy(x, tmp.write("neg.npy", npy("<i8", "(2,)", raw<int64_t>({0, -3}))), false),
                    "neg.npy: label 1 is -3", "integers 0..K-1");
  CHECK_INPUT_ERROR(load_npy(x, tmp.write("frac.npy", npy("<f4", "(2,)", raw<float>({0.5f, 1}))), false),
                    "frac.npy: label 0 is 0.5", "regression=true");
  CHECK_INPUT_ERROR(
      load_npy(x, tmp.write("y2d.npy", npy("<i8", "(2, 2)", raw<int64_t>({0, 1, 1, 0}))), false),
      "y2d.npy: class labels must be [N] (or [N, 1]), got [2, 2]");
  CHECK_INPUT_ERROR(load_npy(tmp.write("scalar.npy", npy("<f4", "()", raw<float>({1}))), y, false),
                    "scalar.npy: x is a scalar");
  CHECK_INPUT_ERROR(load_npy(tmp.write("x0.npy", npy("<f4", "(0, 3)", "")), y, false), "x0.npy: no samples");
  CHECK_INPUT_ERROR(
      load_npy(tmp.write("v9.npy", npy("<f4", "(2, 3)", std::string(24, '\0'), "False", 9)), y, false),
      "v9.npy: unsupported .npy format version 9");
  const std::string missing = (tmp.dir / "missing.npy").string();
  CHECK_INPUT_ERROR(load_npy(x, missing, false), "cannot open '" + missing + "': No such file or directory");
}

TEST_CASE("npy: shapes and labels that would ask for absurd memory") {
  TempDir tmp;
  const std::string x = tmp.write("x.npy", npy("<f4", "(2, 3)", raw<float>({0, 1, 2, 3, 4, 5})));
  const std::string y = tmp.write("y.npy", npy("<i8", "(2,)", raw<int64_t>({0, 1})));
  // No data (a zero dimension), yet 2 * 2^62 * 2^62 overflowed the tensor's element count.
  CHECK_INPUT_ERROR(
      load_npy(tmp.write("zero.npy", npy("<f4", "(2, 4611686018427387904, 4611686018427387904, 0)", "")), y,
               false),
      "zero.npy: the .npy shape has more than 2^60 elements");
  std::string dims = "(2";
  for (int k = 0; k < 70; ++k) dims += ", 1";
  CHECK_INPUT_ERROR(load_npy(tmp.write("dims.npy", npy("<f4", dims + ")", raw<float>({0, 1}))), y, false),
                    "dims.npy: the .npy shape has more than 64 dimensions");
  // A class index makes a class name for every index below it.
  CHECK_INPUT_ERROR(load_npy(x, tmp.write("big.npy", npy("<i8", "(2,)", raw<int64_t>({0, 70000}))), false),
                    "big.npy: label 1 is 70000", "K <= 65536");
  CHECK(load_npy(x, tmp.write("ok.npy", npy("<i8", "(2,)", raw<int64_t>({0, 65535}))), false).num_classes() ==
        65536);
}
