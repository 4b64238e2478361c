// NumPy .npy: "\x93NUMPY", version (major, minor), a little-endian header length (2 bytes in version 1,
// 4 in versions 2 and 3), a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, F), }
// padded with spaces, then the raw array data.
#include <climits>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "engine/data/gzfile.h"
#include "engine/data/loaders.h"
#include "engine/data/util.h"

namespace kiln::data {

using detail::fail;
using detail::show_value;

namespace {

constexpr size_t kMaxDims = 64;                       // NumPy 2's NPY_MAXDIMS (32 before)
constexpr uint64_t kMaxElements = uint64_t{1} << 60;  // times 8 bytes still fits a uint64_t

struct NpyArray {
  std::string bytes;  // the whole file
  size_t offset = 0;  // where the data starts
  Shape shape;
  std::string descr;  // e.g. "<f4"
  char kind = 'f';    // f, i, u or b
  int item = 4;       // bytes per element
  size_t count = 0;   // elements
};

template <typename T, typename F>
void each_as(const char* p, size_t n, F& f) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    f(i, static_cast<double>(v));
  }
}

// Calls f(i, value) for every element; exact for every dtype but (u)int64 beyond 2^53.
template <typename F>
void for_each_value(const NpyArray& a, F f) {
  const char* p = a.bytes.data() + a.offset;
  const size_t n = a.count;
  const char k = a.kind;
  const int s = a.item;
  if (k == 'f') s == 4 ? each_as<float>(p, n, f) : each_as<double>(p, n, f);
  if (k == 'b' || (k == 'u' && s == 1)) each_as<uint8_t>(p, n, f);
  if (k == 'u' && s == 2) each_as<uint16_t>(p, n, f);
  if (k == 'u' && s == 4) each_as<uint32_t>(p, n, f);
  if (k == 'u' && s == 8) each_as<uint64_t>(p, n, f);
  if (k == 'i' && s == 1) each_as<int8_t>(p, n, f);
  if (k == 'i' && s == 2) each_as<int16_t>(p, n, f);
  if (k == 'i' && s == 4) each_as<int32_t>(p, n, f);
  if (k == 'i' && s == 8) each_as<int64_t>(p, n, f);
}

// The value text after `key:` in the header dict, starting at its first character.
std::string_view dict_value(const std::string& path, std::string_view header, const char* key) {
  for (const char q : {'\'', '"'}) {
    std::string k = std::string(1, q) + key + q;
    size_t at = header.find(k);
    if (at == std::string_view::npos) continue;
    size_t i = at + k.size();
    while (i < header.size() && header[i] == ' ') ++i;
    if (i < header.size() && header[i] == ':') {
      ++i;
      while (i < header.size() && header[i] == ' ') ++i;
      return header.substr(i);
    }
  }
  fail(path + ": the .npy header has no '" + key + "' entry: " + show_value(header));
}

Shape parse_shape(const std::string& path, std::string_view v) {
  if (v.empty() || v[0] != '(') fail(path + ": cannot parse the .npy shape " + show_value(v));
  Shape shape;
  size_t i = 1;
  for (;;) {
    while (i < v.size() && (v[i] == ' ' || v[i] == ',')) ++i;
    if (i < v.size() && v[i] == ')') return shape;
    if (i >= v.size() || v[i] < '0' || v[i] > '9')
      fail(path + ": cannot parse the .npy shape " + show_value(v));
    int64_t d = 0;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') {
      if (d > (INT64_MAX - 9) / 10) fail(path + ": .npy shape dimension too large in " + show_value(v));
      d = d * 10 + (v[i++] - '0');
    }
    if (i < v.size() && v[i] == 'L') ++i;  // Python 2 long
    shape.push_back(d);
    if (shape.size() > kMaxDims)
      fail(path + ": the .npy shape has more than " + std::to_string(kMaxDims) +
           " dimensions (NumPy's limit)");
  }
}

NpyArray read_npy(const std::string& path) {
  NpyArray a;
  a.bytes = read_file(path);
  const std::string& b = a.bytes;
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0)
    fail(path + ": not a .npy file (bad magic " + show_value(std::string_view(b).substr(0, 6)) +
         ", expected '\\x93NUMPY')");
  const int major = static_cast<unsigned char>(b[6]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len =
        static_cast<unsigned char>(b[8]) | (static_cast<size_t>(static_cast<unsigned char>(b[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) fail(path + ": truncated .npy header");
    header_len = 0;
    for (int k = 3; k >= 0; --k) header_len = header_len << 8 | static_cast<unsigned char>(b[8 + k]);
    header_start = 12;
  } else {
    fail(path + ": unsupported .npy format version " + std::to_string(major) + " (expected 1, 2 or 3)");
  }
  if (b.size() < header_start + header_len)
    fail(path + ": truncated .npy header (" + std::to_string(header_len) + " bytes announced, " +
         std::to_string(b.size() - header_start) + " present)");
  const std::string_view header(b.data() + header_start, header_len);

  std::string_view descr = dict_value(path, header, "descr");
  if (descr.empty() || (descr[0] != '\'' && descr[0] != '"'))
    fail(path + ": unsupported dtype " + show_value(descr.substr(0, descr.find('}'))) +
         " (structured arrays are not supported)");
  const size_t close = descr.find(descr[0], 1);
  if (close == std::string_view::npos) fail(path + ": cannot parse the .npy dtype " + show_value(descr));
  a.descr = std::string(descr.substr(1, close - 1));
  if (dict_value(path, header, "fortran_order").substr(0, 4) == "True")
    fail(path + ": Fortran-order arrays are not supported (save with np.ascontiguousarray(a))");
  const std::string_view shape_text = dict_value(path, header, "shape");
  a.shape = parse_shape(path, shape_text);

  const std::string& t = a.descr;
  const bool known =
      t.size() == 3 && (t[0] == '<' || t[0] == '|' || t[0] == '=' || (t[0] == '>' && t[2] == '1'));
  const char kind = known ? t[1] : '?';
  const int item = known ? t[2] - '0' : 0;
  auto unsupported = [&](const char* why) {
    fail(path + ": unsupported dtype " + show_value(t) + " (" + why +
         "; supported: float32, float64, int8-64, uint8-64, bool, little-endian)");
  };
  if (t.size() == 3 && t[0] == '>') unsupported("big-endian");
  if (!known || !((kind == 'f' && (item == 4 || item == 8)) ||
                  ((kind == 'i' || kind == 'u') && (item == 1 || item == 2 || item == 4 || item == 8)) ||
                  (kind == 'b' && item == 1)))
    unsupported("not a plain number type");
  a.kind = kind;
  a.item = item;

  // The product of the nonzero dimensions must fit as well: a shape such as (2, 0, 2**62, 2**62) holds
  // no data, yet the tensor's element count multiplies its dimensions from the left.
  uint64_t count = 1;
  bool empty = false;
  for (int64_t d : a.shape) {
    const auto u = static_cast<uint64_t>(d);
    if (u == 0) {
      empty = true;
      continue;
    }
    if (count > kMaxElements / u)
      fail(path + ": the .npy shape has more than 2^60 elements (" + show_value(shape_text) + ")");
    count *= u;
  }
  if (empty) count = 0;
  const uint64_t need = count * static_cast<uint64_t>(item), have = b.size() - header_start - header_len;
  if (have != need)
    fail(path + ": " + (have < need ? "truncated" : "trailing data") + ": shape " + shape_str(a.shape) +
         " of " + t + " needs " + std::to_string(need) + " bytes of data but " + std::to_string(have) +
         " follow the header");

  a.offset = header_start + header_len;
  a.count = static_cast<size_t>(count);
  return a;
}

// Element i of an array of `shape`, written as [sample, rest...] for messages.
std::string index_str(const Shape& shape, size_t i) {
  Shape idx(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    idx[k] = static_cast<int64_t>(i % static_cast<size_t>(shape[k]));
    i /= static_cast<size_t>(shape[k]);
  }
  return shape_str(idx);
}

// Converts to float32, rejecting NaN, infinities and values beyond float32's range.
std::vector<float> to_float(const std::string& path, const NpyArray& a) {
  std::vector<float> out(a.count);
  for_each_value(a, [&](size_t i, double v) {
    if (!std::isfinite(v) || std::fabs(v) > 3.4028234663852886e38)
      fail(path + ": element " + index_str(a.shape, i) + " is " +
           (std::isfinite(v) ? detail::fmt_num(v) + " (beyond float32)"
                             : std::string(detail::nonfinite_name(static_cast<float>(v)))));
    out[i] = static_cast<float>(v);
  });
  return out;
}

}  // namespace

Dataset load_npy(const std::string& x_path, const std::string& y_path, bool regression) {
  NpyArray xa = read_npy(x_path);
  if (xa.shape.empty()) fail(x_path + ": x is a scalar; expected an array of shape [N, ...]");
  const int64_t n = xa.shape[0];
  if (n == 0) fail(x_path + ": no samples (shape " + shape_str(xa.shape) + ")");
  NpyArray ya = read_npy(y_path);
  if (ya.shape.empty() || ya.shape[0] != n)
    fail(y_path + ": shape " + shape_str(ya.shape) + " does not match the " + std::to_string(n) +
         " samples of " + x_path + " (shape " + shape_str(xa.shape) + ")");

  Dataset d;
  d.source = x_path + " + " + y_path;
  Shape xs = xa.shape;
  if (xs.size() == 1) xs.push_back(1);
  d.x = Tensor(xs, to_float(x_path, xa));

  if (regression) {
    if (ya.shape.size() > 2)
      fail(y_path + ": regression targets must be [N] or [N, T], got " + shape_str(ya.shape));
    const int64_t t = ya.shape.size() == 2 ? ya.shape[1] : 1;
    d.targets = Tensor({n, t}, to_float(y_path, ya));
    return d;
  }
  if (!(ya.shape.size() == 1 || (ya.shape.size() == 2 && ya.shape[1] == 1)))
    fail(y_path + ": class labels must be [N] (or [N, 1]), got " + shape_str(ya.shape) +
         "; pass regression=true for real-valued targets");
  d.labels.resize(static_cast<size_t>(n));
  for_each_value(ya, [&](size_t i, double v) {
    if (!(v == std::floor(v)) || v < 0 || v >= detail::kMaxClasses)
      fail(y_path + ": label " + std::to_string(i) + " is " + detail::fmt_num(v) +
           "; class labels must be integers 0..K-1 with K <= " + std::to_string(detail::kMaxClasses) +
           " (pass regression=true for real-valued targets)");
    d.labels[i] = static_cast<int>(v);
  });
  d.class_names = detail::index_class_names(d.labels);
  return d;
}

}  // namespace kiln::data
