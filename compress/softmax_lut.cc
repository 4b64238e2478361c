// hls4ml's softmax (stable or latency) as lookup tables: the tables, the forward on real vectors and the
// training op (see lut.h for the construction it reproduces).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "compress/lut.h"
#include "compress/lut_detail.h"
#include "engine/check.h"

namespace kiln::compress {

using namespace lut_detail;

namespace {

// Checks a softmax type: a valid FixedType of width 1..48 with |i| <= 64.
void check_softmax_type(const FixedType& t, const char* field, int max_width = 48) {
  validate(t);
  int w = width(t);
  if (w < 1 || w > max_width || std::abs(t.i) > 64)
    throw InputError(std::string("softmax table: ") + field + " " + ap_type_string(t) + " must be 1 to " +
                     std::to_string(max_width) + " bits wide with at most 64 integer bits");
}

}  // namespace

// ---- softmax --------------------------------------------------------------------------------------

int softmax_table_size(const SoftmaxLutSpec& spec) {
  int cap = std::min(width(spec.input_type), width(spec.inv_table_type));
  if (cap >= 30) return spec.table_size;
  return std::min(spec.table_size, 1 << std::max(cap, 0));
}

void validate(const SoftmaxLutSpec& spec) {
  if (!table_size_ok(spec.table_size))
    throw InputError("softmax table: table_size must be " + table_size_rule() + ", got " +
                     std::to_string(spec.table_size));
  check_softmax_type(spec.input_type, "input_type");
  check_softmax_type(spec.exp_table_type, "exp_table_type");
  check_softmax_type(spec.inv_table_type, "inv_table_type");
  if (spec.result_type) {
    validate(*spec.result_type);
    int w = width(*spec.result_type);
    if (w < 1 || w > 64)
      throw InputError("softmax: result_type must be 1 to 64 bits wide, got " + std::to_string(w) + " bits");
  }
  if (width(spec.exp_table_type) + width(spec.inv_table_type) > 53)
    throw InputError("softmax table: exp_table_type " + ap_type_string(spec.exp_table_type) +
                     " and inv_table_type " + ap_type_string(spec.inv_table_type) +
                     " together exceed 53 bits: their product would not be exact");
  int n = log2_exact(softmax_table_size(spec));
  if (width(spec.exp_table_type) < n)
    throw InputError("softmax table: exp_table_type " + ap_type_string(spec.exp_table_type) +
                     " has fewer than the " + std::to_string(n) +
                     " bits that index the invert table (table_size " +
                     std::to_string(softmax_table_size(spec)) + ")");
}

SoftmaxLutSpec parse_softmax_lut(const Config& c, const SoftmaxLutSpec& base) {
  SoftmaxLutSpec s = base;
  std::string where = " in " + c.where() + " (softmax)";
  if (c.has("implementation")) {
    std::string v = c.get<std::string>("implementation", "");
    std::string lower = v;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower == "stable") {
      s.implementation = SoftmaxImpl::kStable;
    } else if (lower == "latency") {
      s.implementation = SoftmaxImpl::kLatency;
    } else {
      c.fail("implementation", "key 'implementation'" + where + " must be stable or latency, got '" + v +
                                   "' (hls4ml's legacy and argmax are not modelled)");
    }
  }
  if (c.has("table_size")) {
    s.table_size = c.get<int>("table_size", 0);
    if (!table_size_ok(s.table_size))
      c.fail("table_size", "key 'table_size'" + where + " must be " + table_size_rule() + ", got " +
                               std::to_string(s.table_size));
  }
  for (const char* key : {"exp_table_type", "inv_table_type"}) {
    if (!c.has(key)) continue;
    std::string text = c.get<std::string>(key, "");
    FixedType t{};
    try {
      t = parse_ap_type(text);
      check_softmax_type(t, key);
    } catch (const InputError& e) {
      c.fail(key, std::string("key '") + key + "'" + where + ": " + e.what());
    }
    (std::string(key) == "exp_table_type" ? s.exp_table_type : s.inv_table_type) = t;
  }
  validate(s);
  return s;
}

const std::vector<std::string>& softmax_lut_config_keys() {
  static const std::vector<std::string> keys{"implementation", "table_size", "exp_table_type",
                                             "inv_table_type"};
  return keys;
}

int softmax_index(double v, const FixedType& t, int table_size) {
  int w = width(t), n = log2_exact(table_size);
  KILN_CHECK(is_pow2(table_size) && n <= w && w <= 53, "bad softmax index type or table size");
  double code = std::ldexp(v, t.f);
  KILN_CHECK(std::floor(code) == code, "softmax index of " + num(v) + ", not a value of the type");
  double u = code < 0 ? code + std::ldexp(1.0, w) : code;  // the W-bit two's complement word
  KILN_CHECK(u >= 0 && u < std::ldexp(1.0, w), "softmax index of " + num(v) + ", outside the type");
  return static_cast<int>(std::floor(std::ldexp(u, n - w)));
}

double softmax_index_value(int j, const FixedType& t, int table_size) {
  int w = width(t), n = log2_exact(table_size);
  KILN_CHECK(j >= 0 && j < table_size && n <= w, "bad softmax table index");
  double s = j;
  if (t.k == 1 && j >= table_size / 2) s -= table_size;  // the sign bit is the top address bit
  return std::ldexp(s, w - n - t.f);
}

namespace {

double exp_entry(int j, const SoftmaxLutSpec& spec, int n_table) {
  float x = static_cast<float>(softmax_index_value(j, spec.input_type, n_table));  // exact
  if (spec.scale != 1) x = static_cast<float>(spec.scale * x);
  return ap_from_float(std::exp(x), spec.exp_table_type);  // expf
}

double inv_entry(int j, const SoftmaxLutSpec& spec, int n_table) {
  float x = static_cast<float>(softmax_index_value(j, spec.exp_table_type, n_table));  // exact
  float r = x == 0.f ? std::numeric_limits<float>::infinity() : 1.0f / x;              // float division
  return ap_from_float(r, spec.inv_table_type);
}

// hls4ml's reduce(): a balanced tree, the left part the largest power of two below n, each sum converted
// to the accumulator type (exp_table_type).
double tree_sum(const double* v, int64_t n, const FixedType& t) {
  if (n == 1) return v[0];
  const int64_t left = reduce_left(n);
  return quantize(tree_sum(v, left, t) + tree_sum(v + left, n - left, t), t);
}

}  // namespace

int64_t reduce_left(int64_t n) {
  int64_t left = 1;
  while (left * 2 <= n - 1) left *= 2;
  return left;
}

FixedType softmax_diff_type(const FixedType& in) {
  return {1, in.k + in.i - 1, in.f, Round::kRnd, Overflow::kSat};
}

std::vector<double> softmax_exp_table(const SoftmaxLutSpec& spec) {
  validate(spec);
  int n = softmax_table_size(spec);
  std::vector<double> t(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) t[static_cast<size_t>(j)] = exp_entry(j, spec, n);
  return t;
}

std::vector<double> softmax_inv_table(const SoftmaxLutSpec& spec) {
  validate(spec);
  int n = softmax_table_size(spec);
  std::vector<double> t(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) t[static_cast<size_t>(j)] = inv_entry(j, spec, n);
  return t;
}

std::vector<double> softmax_lut(const std::vector<double>& x, const SoftmaxLutSpec& spec) {
  validate(spec);
  if (x.empty()) return {};
  for (double v : x)
    if (std::isnan(v)) return std::vector<double>(x.size(), std::numeric_limits<double>::quiet_NaN());
  int n_table = softmax_table_size(spec);
  const FixedType& in_t = spec.input_type;
  std::vector<double> xq(x.size()), e(x.size());
  for (size_t i = 0; i < x.size(); ++i) xq[i] = quantize(x[i], in_t);
  double m = *std::max_element(xq.begin(), xq.end());
  const FixedType diff_t = softmax_diff_type(in_t);
  for (size_t i = 0; i < x.size(); ++i) {
    double a =
        spec.implementation == SoftmaxImpl::kStable ? quantize(quantize(xq[i] - m, diff_t), in_t) : xq[i];
    e[i] = exp_entry(softmax_index(a, in_t, n_table), spec, n_table);
  }
  double s = tree_sum(e.data(), static_cast<int64_t>(e.size()), spec.exp_table_type);
  double inv = inv_entry(softmax_index(s, spec.exp_table_type, n_table), spec, n_table);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double p = e[i] * inv;  // exact: validate() keeps the two widths within 53 bits
    y[i] = spec.result_type ? quantize(p, *spec.result_type) : p;
  }
  return y;
}

namespace {

struct Lanes {
  int64_t outer, n, inner;
};

Lanes lanes_of(const Shape& s, int axis) {
  int nd = static_cast<int>(s.size());
  int a = axis < 0 ? axis + nd : axis;
  if (a < 0 || a >= nd)
    throw ShapeError("softmax_lut: axis " + std::to_string(axis) + " out of range for " + shape_str(s));
  Lanes l{1, s[static_cast<size_t>(a)], 1};
  for (int i = 0; i < a; ++i) l.outer *= s[static_cast<size_t>(i)];
  for (int i = a + 1; i < nd; ++i) l.inner *= s[static_cast<size_t>(i)];
  return l;
}

}  // namespace

Var softmax_lut(const Var& x, int axis, const SoftmaxLutSpec& spec) {
  validate(spec);
  if (spec.result_type && width(*spec.result_type) > 24)
    throw InputError(
        "softmax_lut: result_type " + ap_type_string(*spec.result_type) +
        " is wider than float32's 24-bit significand; the outputs would not be exact in training");
  Lanes l = lanes_of(x.shape(), axis);
  bool record = grad_enabled() && x.requires_grad();
  Tensor out = Tensor::uninitialized(x.shape());
  std::vector<float> y_real(record ? static_cast<size_t>(x.size()) : 0);  // the real softmax, for backward
  const float* px = x.value().data();
  std::vector<double> lane(static_cast<size_t>(l.n));
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t i = 0; i < l.inner; ++i) {
      int64_t base = o * l.n * l.inner + i;
      for (int64_t j = 0; j < l.n; ++j) lane[static_cast<size_t>(j)] = px[base + j * l.inner];
      std::vector<double> y = softmax_lut(lane, spec);
      for (int64_t j = 0; j < l.n; ++j)
        out[base + j * l.inner] = static_cast<float>(y[static_cast<size_t>(j)]);
      if (record && l.n > 0) {
        const double c = spec.scale;
        double m = *std::max_element(lane.begin(), lane.end()), sum = 0;
        for (double v : lane) sum += std::exp(c * (v - m));
        for (int64_t j = 0; j < l.n; ++j)
          y_real[static_cast<size_t>(base + j * l.inner)] =
              static_cast<float>(std::exp(c * (lane[static_cast<size_t>(j)] - m)) / sum);
      }
    }
  // dx = c y (g - sum(g y)), y the real softmax of c x.
  return make_result(std::move(out), "softmax_lut", {x},
                     [l, c = spec.scale, y = std::move(y_real)](Node& self) {
                       const float* g = self.grad.data();
                       float* dx = self.inputs[0]->grad_buffer().data();
                       for (int64_t o = 0; o < l.outer; ++o)
                         for (int64_t i = 0; i < l.inner; ++i) {
                           int64_t base = o * l.n * l.inner + i;
                           double dot = 0;
                           for (int64_t j = 0; j < l.n; ++j) {
                             int64_t k = base + j * l.inner;
                             dot += static_cast<double>(g[k]) * y[static_cast<size_t>(k)];
                           }
                           for (int64_t j = 0; j < l.n; ++j) {
                             int64_t k = base + j * l.inner;
                             dx[k] += static_cast<float>(c * y[static_cast<size_t>(k)] * (g[k] - dot));
                           }
                         }
                     });
}

}  // namespace kiln::compress
