// Lookup-table activations (see lut.h for the hls4ml construction they reproduce). Table entries are
// computed in float32 exactly as hls4ml's C simulation computes them (expf, tanhf, float sums and
// quotients), then converted to the table type by quantize() of fixed_point.h, which is ap_fixed's
// conversion. Index arithmetic is on exact integer-valued doubles.
#include "compress/lut.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "compress/lut_detail.h"
#include "engine/check.h"

namespace kiln::compress {

using namespace lut_detail;

namespace {

const char* function_name(LutFunction f) {
  return f == LutFunction::kSigmoid ? "sigmoid" : f == LutFunction::kTanh ? "tanh" : "gelu";
}

// A positive power of two in [2^-16, 2^16] (frexp: r = 0.5 * 2^e exactly).
bool range_ok(double r) {
  if (!(r > 0) || !std::isfinite(r)) return false;
  int e = 0;
  return std::frexp(r, &e) == 0.5 && e - 1 >= -16 && e - 1 <= 16;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool parse_int(const std::string& s, int& out) {
  std::string t = trim(s);
  if (t.empty()) return false;
  size_t pos = 0;
  try {
    long v = std::stol(t, &pos);
    if (pos != t.size() || v < -100000 || v > 100000) return false;
    out = static_cast<int>(v);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

}  // namespace

// ---- ap type strings ------------------------------------------------------------------------------

FixedType parse_ap_type(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return InputError("bad fixed-point type '" + text + "': " + why +
                      " (expected e.g. ap_fixed<18,8> or ap_ufixed<8,0,AP_RND,AP_SAT>)");
  };
  std::string s = trim(text);
  size_t lt = s.find('<');
  if (lt == std::string::npos || s.empty() || s.back() != '>') throw bad("no <...> parameters");
  std::string name = trim(s.substr(0, lt));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name.rfind("ap_", 0) == 0) name = name.substr(3);
  int k = 0;
  if (name == "fixed") {
    k = 1;
  } else if (name == "ufixed") {
    k = 0;
  } else {
    throw bad("the type must be ap_fixed or ap_ufixed");
  }
  std::vector<std::string> params;
  std::string body = s.substr(lt + 1, s.size() - lt - 2);
  size_t start = 0;
  for (;;) {
    size_t comma = body.find(',', start);
    params.push_back(
        trim(body.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (params.size() < 2 || params.size() > 5) throw bad("expected 2 to 5 parameters");
  int w = 0, iw = 0;
  if (!parse_int(params[0], w) || !parse_int(params[1], iw))
    throw bad("width and integer bits must be integers");
  if (w < 1 || w > 64) throw bad("the width must be 1 to 64 bits");
  FixedType t{k, k == 1 ? iw - 1 : iw, w - iw, Round::kTrn, Overflow::kWrap};
  try {
    if (params.size() > 2) t.round = parse_round(params[2]);
    if (params.size() > 3) t.overflow = parse_overflow(params[3]);
  } catch (const InputError& e) {
    throw bad(e.what());
  }
  if (t.round == Round::kStochastic) throw bad("S_RND is not an ap_fixed rounding mode");
  if (params.size() > 4) {
    int n = -1;
    if (!parse_int(params[4], n) || n != 0) throw bad("saturation bits other than 0 are not supported");
  }
  validate(t);
  return t;
}

std::string ap_type_string(const FixedType& t) {
  std::string s = std::string(t.k == 1 ? "ap_fixed<" : "ap_ufixed<") + std::to_string(width(t)) + "," +
                  std::to_string(t.k + t.i);
  if (t.overflow != Overflow::kWrap) {
    s += "," + to_string(t.round) + "," + to_string(t.overflow);
  } else if (t.round != Round::kTrn) {
    s += "," + to_string(t.round);
  }
  return s + ">";
}

// ---- sigmoid and tanh -----------------------------------------------------------------------------

void validate(const LutSpec& spec) {
  std::string who = std::string(function_name(spec.function)) + " table: ";
  if (!table_size_ok(spec.table_size))
    throw InputError(who + "table_size must be " + table_size_rule() + ", got " +
                     std::to_string(spec.table_size));
  if (!range_ok(spec.range))
    throw InputError(who + "table_range must be a power of two in [2^-16, 2^16], got " + num(spec.range));
  validate(spec.table_type);
  int w = width(spec.table_type);
  if (w < 1 || w > 64)
    throw InputError(who + "table_type must be 1 to 64 bits wide, got " + std::to_string(w) + " bits");
}

LutSpec parse_lut(const Config& c, LutFunction function) {
  LutSpec s = LutSpec::defaults(function);
  std::string where = " in " + c.where() + " (" + function_name(function) + " table)";
  if (c.has("table_size")) {
    s.table_size = c.get<int>("table_size", 0);
    if (!table_size_ok(s.table_size))
      c.fail("table_size", "key 'table_size'" + where + " must be " + table_size_rule() + ", got " +
                               std::to_string(s.table_size));
  }
  if (c.has("table_range")) {
    s.range = c.get<double>("table_range", 0.0);
    if (!range_ok(s.range))
      c.fail("table_range",
             "key 'table_range'" + where +
                 " must be a power of two in [2^-16, 2^16] (the table covers [-range, range)), got " +
                 num(s.range));
  }
  if (c.has("table_type")) {
    std::string text = c.get<std::string>("table_type", "");
    try {
      s.table_type = parse_ap_type(text);
    } catch (const InputError& e) {
      c.fail("table_type", "key 'table_type'" + where + ": " + e.what());
    }
  }
  validate(s);
  return s;
}

const std::vector<std::string>& lut_config_keys() {
  static const std::vector<std::string> keys{"table_size", "table_range", "table_type"};
  return keys;
}

double lut_input(int j, const LutSpec& spec) {
  return 2.0 * spec.range * (j - spec.table_size / 2.0) / spec.table_size;
}

double lut_entry(int j, const LutSpec& spec) {
  KILN_CHECK(j >= 0 && j < spec.table_size, "table index " + std::to_string(j) + " out of range");
  float in = static_cast<float>(lut_input(j, spec));  // exact: a multiple of 2R/N
  float v = 0.f;
  if (spec.function == LutFunction::kSigmoid) {
    float den = 1.0f + std::exp(-in);                        // float: expf, then a float sum
    v = static_cast<float>(1.0 / static_cast<double>(den));  // the quotient in double, returned as float
  } else if (spec.function == LutFunction::kTanh) {
    v = std::tanh(in);  // tanhf
  } else {
    v = 0.5f * in * (1.f + std::erf(in * 0.70710678f));
  }
  return ap_from_float(v, spec.table_type);
}

std::vector<double> lut_table(const LutSpec& spec) {
  validate(spec);
  std::vector<double> t(static_cast<size_t>(spec.table_size));
  for (int j = 0; j < spec.table_size; ++j) t[static_cast<size_t>(j)] = lut_entry(j, spec);
  return t;
}

int lut_index(double x, const LutSpec& spec) {
  KILN_CHECK(!std::isnan(x), "lut_index of NaN");
  // x * N / (2R): N and 2R are powers of two, so both steps are exact (as ap_fixed's are).
  double q = std::trunc(x * spec.table_size / (2.0 * spec.range));
  double idx = q + spec.table_size / 2;
  if (idx < 0) return 0;
  if (idx > spec.table_size - 1) return spec.table_size - 1;
  return static_cast<int>(idx);
}

namespace {

double lookup(double x, const LutSpec& spec, LutFunction f) {
  KILN_CHECK(spec.function == f, std::string("a ") + function_name(spec.function) + " spec passed to " +
                                     function_name(f) + "_lut");
  validate(spec);
  if (std::isnan(x)) return x;
  if (f == LutFunction::kGelu && x >= spec.range) return x;
  if (f == LutFunction::kGelu && x < -spec.range) return 0;
  return lut_entry(lut_index(x, spec), spec);
}

Var lut_op(const Var& x, const LutSpec& spec, LutFunction f, const char* op) {
  KILN_CHECK(spec.function == f, std::string("a ") + function_name(spec.function) + " spec passed to " + op);
  validate(spec);
  if (width(spec.table_type) > 24)
    throw InputError(
        std::string(op) + ": table_type " + ap_type_string(spec.table_type) +
        " is wider than float32's 24-bit significand; its entries would not be exact in training");
  int64_t n = x.size();
  bool record = grad_enabled() && x.requires_grad();
  // A whole table only when the tensor is larger than it; otherwise the entries used, one by one.
  std::vector<double> table;
  if (n > spec.table_size) table = lut_table(spec);
  Tensor out = Tensor::uninitialized(x.shape());
  std::vector<float> d(record ? static_cast<size_t>(n) : 0);
  const float* px = x.value().data();
  for (int64_t e = 0; e < n; ++e) {
    double v = px[e];
    if (std::isnan(v) || (f == LutFunction::kGelu && v >= spec.range)) {
      out[e] = px[e];
    } else if (f == LutFunction::kGelu && v < -spec.range) {
      out[e] = 0.f;
    } else {
      int j = lut_index(v, spec);
      out[e] = static_cast<float>(table.empty() ? lut_entry(j, spec) : table[static_cast<size_t>(j)]);
    }
    if (record) {
      double g = 0;
      if (f == LutFunction::kSigmoid) {
        double s = 1.0 / (1.0 + std::exp(-v));
        g = s * (1.0 - s);
      } else if (f == LutFunction::kTanh) {
        double t = std::tanh(v);
        g = 1.0 - t * t;
      } else {  // gelu' = Phi(x) + x phi(x)
        g = 0.5 * (1.0 + std::erf(v * M_SQRT1_2)) + v * std::exp(-0.5 * v * v) * 0.3989422804014327;
      }
      d[static_cast<size_t>(e)] = static_cast<float>(g);
    }
  }
  return make_result(std::move(out), op, {x}, [d = std::move(d)](Node& self) {
    const float* g = self.grad.data();
    float* gx = self.inputs[0]->grad_buffer().data();
    for (int64_t e = 0; e < self.value.size(); ++e) gx[e] += g[e] * d[static_cast<size_t>(e)];
  });
}

}  // namespace

double sigmoid_lut(double x, const LutSpec& spec) { return lookup(x, spec, LutFunction::kSigmoid); }
double tanh_lut(double x, const LutSpec& spec) { return lookup(x, spec, LutFunction::kTanh); }
Var sigmoid_lut(const Var& x, const LutSpec& spec) {
  return lut_op(x, spec, LutFunction::kSigmoid, "sigmoid_lut");
}
Var tanh_lut(const Var& x, const LutSpec& spec) { return lut_op(x, spec, LutFunction::kTanh, "tanh_lut"); }
double gelu_lut(double x, const LutSpec& spec) { return lookup(x, spec, LutFunction::kGelu); }
Var gelu_lut(const Var& x, const LutSpec& spec) { return lut_op(x, spec, LutFunction::kGelu, "gelu_lut"); }

}  // namespace kiln::compress
