#include "symreg/codegen.h"

#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "engine/check.h"
#include "symreg/lut.h"

namespace kiln::symreg {
namespace {

// A float literal that reads back as exactly v: 9 significant digits, with a '.' or exponent so that the
// 'f' suffix is valid.
std::string c_float(float v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  s += "f";
  return v < 0 ? "(" + s + ")" : s;
}

std::string lname(Op op) { return std::string("kiln_") + op_info(op).name; }

// Locale-independent: std::isalnum accepts more than ASCII in some locales, and C identifiers may not.
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_alnum(char c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A user's text inside an error message: quoted, control and non-ASCII bytes escaped (the message stays on
// one line) and cut after 80 characters (a pasted file does not become a megabyte-long message).
std::string quoted(const std::string& s) {
  std::string o = "'";
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      o += buf;
    } else {
      o += static_cast<char>(c);
    }
  }
  o += "'";
  if (s.size() > 80) o += " (" + std::to_string(s.size()) + " characters)";
  return o;
}

// The words of a space-separated list, as a set.
std::set<std::string> words(const std::string& list) {
  std::set<std::string> s;
  std::istringstream is(list);
  for (std::string w; is >> w;) s.insert(w);
  return s;
}

// The ap_fixed modes kiln's host model (codegen/hls_host/ap_common.h) implements; Xilinx's AP_WRAP_SM is
// the one it does not.
const std::set<std::string>& q_modes() {
  static const std::set<std::string> s =
      words("AP_TRN AP_TRN_ZERO AP_RND AP_RND_ZERO AP_RND_MIN_INF AP_RND_INF AP_RND_CONV");
  return s;
}
const std::set<std::string>& o_modes() {
  static const std::set<std::string> s = words("AP_WRAP AP_SAT AP_SAT_ZERO AP_SAT_SYM");
  return s;
}

// Keywords of C99/C11/C23 and C++20, including C++'s alternative operator names (`and`, `or`, ...):
// the C export is compiled as C and often as C++, the HLS export as C++. (_Bool, _Complex, ... start
// with '_' and a capital: reserved anyway.)
const std::set<std::string>& c_keywords() {
  static const std::set<std::string> s = words(
      "alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t "
      "char32_t class compl concept const consteval constexpr constinit const_cast continue co_await "
      "co_return co_yield decltype default delete do double dynamic_cast else enum explicit export extern "
      "false float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr "
      "operator or or_eq private protected public register reinterpret_cast requires restrict return short "
      "signed sizeof static static_assert static_cast struct switch template this thread_local throw true "
      "try typedef typeid typename typeof typeof_unqual union unsigned using virtual void volatile wchar_t "
      "while xor xor_eq");
  return s;
}

// What <math.h> declares (C99 functions in their double, float and long double forms, its macros, and
// glibc's default-visible Bessel functions): the C export includes it, and a function of the same name
// conflicts with it or is expanded as a macro.
const std::set<std::string>& math_names() {
  static const std::set<std::string> s = [] {
    std::set<std::string> r = words(
        "fpclassify isfinite isinf isnan isnormal signbit isgreater isgreaterequal isless islessequal "
        "islessgreater isunordered float_t double_t math_errhandling HUGE_VAL HUGE_VALF HUGE_VALL INFINITY "
        "NAN FP_INFINITE FP_NAN FP_NORMAL FP_SUBNORMAL FP_ZERO FP_FAST_FMA FP_FAST_FMAF FP_FAST_FMAL "
        "FP_ILOGB0 FP_ILOGBNAN MATH_ERRNO MATH_ERREXCEPT j0 j1 jn y0 y1 yn");
    for (const std::string& f : words(
             "acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 frexp ilogb "
             "ldexp log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf erfc lgamma "
             "tgamma ceil floor nearbyint rint lrint llrint round lround llround trunc fmod remainder remquo "
             "copysign nan nextafter nexttoward fdim fmax fmin fma"))
      r.insert({f, f + "f", f + "l"});
    return r;
  }();
  return s;
}

// Names of ap_fixed.h / ap_int.h and hls_math.h that the HLS export sees at file scope.
const std::set<std::string>& hls_names() {
  static const std::set<std::string> s = words(
      "ap_fixed ap_ufixed ap_int ap_uint ap_fixed_base ap_int_base ap_q_mode ap_o_mode hls std AP_WRAP_SM");
  return s;
}

// Everything the generated files define besides the function (for every operator, not only the tree's,
// so that a name is valid or not whatever the expression).
const std::set<std::string>& own_names() {
  static const std::set<std::string> s = [] {
    std::set<std::string> r = {"kiln_t", "kiln_table_t", "kiln_index_t"};
    for (int k = 0; k < kNumOps; ++k) {
      const Op op = static_cast<Op>(k);
      if (!is_ascii_alnum(op_info(op).name[0])) continue;  // "+", "-", ...: no helper
      r.insert(lname(op));
      if (is_lut(op)) r.insert(lname(op) + "_table");
    }
    return r;
  }();
  return s;
}

// Infix code of the subtree ending at i. hls: fixed-point flavour (casts, hls:: math).
std::string emit(const Tree& t, int i, bool hls) {
  const Node& n = t[i];
  if (n.op == Op::kConst) return hls ? "kiln_t(" + c_float(n.value) + ")" : c_float(n.value);
  if (n.op == Op::kVar) return "x[" + std::to_string(n.feature) + "]";
  int c[2];
  children(t, i, c);
  std::string a = emit(t, c[0], hls), b = n.arity == 2 ? emit(t, c[1], hls) : "";
  auto cast = [&](const std::string& e) { return hls ? "kiln_t(" + e + ")" : "(" + e + ")"; };
  std::string m = hls ? "hls::" : "";
  auto f = [&](const char* cname) {
    return hls ? m + cname + "(" + a + ")" : std::string(cname) + "f(" + a + ")";
  };
  switch (n.op) {
    case Op::kAdd:
      return cast(a + " + " + b);
    case Op::kSub:
      return cast(a + " - " + b);
    case Op::kMul:
      return cast(a + " * " + b);
    case Op::kDiv:
      return cast(a + " / " + b);
    case Op::kNeg:
      return cast("-" + a);
    case Op::kInv:
      return cast((hls ? "kiln_t(1) / " : "1.0f / ") + a);
    case Op::kSquare:
    case Op::kCube:
    case Op::kAq:
    case Op::kGauss:
      return lname(n.op) + "(" + a + (n.arity == 2 ? ", " + b : "") + ")";
    case Op::kPow:
      return hls ? "kiln_t(hls::pow(" + a + ", " + b + "))" : "powf(" + a + ", " + b + ")";
    case Op::kSqrt:
      return hls ? "kiln_t(hls::sqrt(hls::abs(" + a + ")))" : "sqrtf(fabsf(" + a + "))";
    case Op::kLog:
      return hls ? "kiln_t(hls::log(hls::abs(" + a + ")))" : "logf(fabsf(" + a + "))";
    case Op::kAbs:
      return hls ? "kiln_t(hls::abs(" + a + "))" : "fabsf(" + a + ")";
    case Op::kExp:
      return hls ? "kiln_t(" + f("exp") + ")" : f("exp");
    case Op::kSin:
      return hls ? "kiln_t(" + f("sin") + ")" : f("sin");
    case Op::kCos:
      return hls ? "kiln_t(" + f("cos") + ")" : f("cos");
    case Op::kTan:
      return hls ? "kiln_t(" + f("tan") + ")" : f("tan");
    case Op::kTanh:
      return hls ? "kiln_t(" + f("tanh") + ")" : f("tanh");
    default:
      break;
  }
  KILN_CHECK(is_lut(n.op), std::string("no code for ") + op_info(n.op).name);
  return lname(n.op) + "(" + a + ")";
}

std::set<Op> ops_used(const Tree& t) {
  std::set<Op> s;
  for (const Node& n : t) s.insert(n.op);
  return s;
}

std::string header(const Tree& t, const ExportInfo& info, const char* what) {
  std::ostringstream os;
  os << "/* " << what << " generated by kiln symreg.\n";
  os << " *   " << to_infix(t, info.feature_names) << "\n";
  if (!info.comment.empty()) os << " *   " << info.comment << "\n";
  os << " * Inputs:";
  for (int f = 0; f < info.features; ++f)
    os << (f % 6 == 0 ? "\n *  " : "") << " x[" << f << "] = "
       << (f < static_cast<int>(info.feature_names.size()) ? info.feature_names[f] : "x" + std::to_string(f))
       << (f + 1 < info.features ? "," : "");
  os << "\n */\n";
  return os.str();
}

std::string table_literal(const Lut& l, const std::string& type, bool hls) {
  std::ostringstream os;
  for (size_t j = 0; j < l.table.size(); ++j) {
    if (j % 8 == 0) os << "\n   ";
    std::string v = c_float(l.table[j]);
    os << " " << (hls ? type + "(" + v + ")" : v) << ",";
  }
  return os.str();
}

}  // namespace

bool needs_libm(const Tree& t) {
  for (const Node& n : t)
    if (n.arity > 0 && !is_lut(n.op) && n.op != Op::kAdd && n.op != Op::kSub && n.op != Op::kMul &&
        n.op != Op::kDiv && n.op != Op::kNeg && n.op != Op::kInv && n.op != Op::kSquare && n.op != Op::kCube)
      return true;
  return false;
}

std::string c_identifier(const std::string& text) {
  std::string s;
  for (char c : text) s += is_ascii_alnum(c) || c == '_' ? c : '_';
  if (s.empty()) throw InputError("an empty name is not a C identifier");
  if (is_ascii_digit(s[0])) s = "_" + s;
  return s;
}

void check_function_name(const std::string& name, const std::string& what) {
  const std::string q = quoted(name);
  auto bad = [&](const std::string& why) { throw InputError(what + ": " + q + " " + why); };
  if (name.empty()) bad("is empty; a C identifier is needed");
  if (name.size() > 255) bad("has " + std::to_string(name.size()) + " characters; at most 255");
  for (size_t i = 0; i < name.size(); ++i)
    if (!(is_ascii_alnum(name[i]) || name[i] == '_'))
      bad("is not a C identifier: " + quoted(name.substr(i, 1)) + " (character " + std::to_string(i + 1) +
          ") is not an ASCII letter, digit or '_'");
  if (is_ascii_digit(name[0])) bad("is not a C identifier: it starts with a digit");
  if (name[0] == '_') bad("is reserved: C reserves names starting with '_' at file scope");
  if (name.find("__") != std::string::npos) bad("is reserved: C++ reserves names containing \"__\"");
  if (c_keywords().count(name)) bad("is a C or C++ keyword");
  if (math_names().count(name)) bad("is declared by <math.h>");
  if (hls_names().count(name) || q_modes().count(name) || o_modes().count(name))
    bad("is declared by the HLS headers (ap_fixed.h, hls_math.h)");
  if (own_names().count(name)) bad("is a name the export itself defines (kiln_t, kiln_<op>, ...)");
  if (name == "main") bad("is the program's entry point");
}

std::string hls_fixed_type(const std::string& text, const std::string& what) {
  const std::string q = quoted(text);
  const std::string expected =
      " is not a fixed-point type: expected ap_fixed<W, I> or ap_ufixed<W, I>, optionally with a "
      "quantization and an overflow mode (e.g. ap_fixed<16, 6, AP_RND, AP_SAT>)";
  // Tokens: names, integers (optionally negative), '<', '>' and ','; blanks between them are free.
  std::vector<std::string> tok;
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == ' ' || c == '\t') {
      ++i;
    } else if (c == '<' || c == '>' || c == ',') {
      tok.emplace_back(1, c), ++i;
    } else if (is_ascii_alnum(c) || c == '_' || c == '-') {
      size_t j = i + 1;
      while (j < text.size() && (is_ascii_alnum(text[j]) || text[j] == '_')) ++j;
      tok.push_back(text.substr(i, j - i)), i = j;
    } else {
      throw InputError(what + ": " + q + expected);
    }
  }
  // NAME < W , I [, Q [, O [, N]]] >: 2 to 5 arguments, so 6 to 12 tokens.
  const size_t n = tok.size();
  bool shape = n >= 6 && n <= 12 && n % 2 == 0 && (tok[0] == "ap_fixed" || tok[0] == "ap_ufixed") &&
               tok[1] == "<" && tok[n - 1] == ">";
  std::vector<std::string> args;
  for (size_t k = 2; shape && k + 1 < n; k += 2) {
    shape = tok[k] != "<" && tok[k] != ">" && tok[k] != "," && (k + 2 == n || tok[k + 1] == ",");
    args.push_back(tok[k]);
  }
  if (!shape) throw InputError(what + ": " + q + expected);
  // Decimal integers only: a leading 0 would be octal in C++ (016 is 14).
  auto integer = [&](const std::string& s, const std::string& name, int lo, int hi, const std::string& why) {
    const bool neg = s[0] == '-';
    const std::string digits = neg ? s.substr(1) : s;
    bool ok = !digits.empty() && (digits == "0" || digits[0] != '0');
    for (char c : digits) ok = ok && is_ascii_digit(c);
    if (!ok)
      throw InputError(what + ": " + q + ": " + name + " = " + quoted(s) + " is not a decimal integer");
    const int v = digits.size() > 4 ? hi + 1 : (neg ? -1 : 1) * std::stoi(digits);  // 5 digits: out of range
    if (v < lo || v > hi)
      throw InputError(what + ": " + q + ": " + name + " = " + s + " is not in [" + std::to_string(lo) +
                       ", " + std::to_string(hi) + "]" + why);
    return v;
  };
  const int w = integer(args[0], "W", 1, 64, " (kiln's host ap_fixed model holds one 64-bit word)");
  const int i = integer(args[1], "I", -64, 64, "");
  std::string out = tok[0] + "<" + std::to_string(w) + ", " + std::to_string(i);
  if (args.size() > 2) {
    if (!q_modes().count(args[2]))
      throw InputError(what + ": " + q + ": " + quoted(args[2]) + " is not a quantization mode (" +
                       join(q_modes()) + ")");
    out += ", " + args[2];
  }
  if (args.size() > 3) {
    if (args[3] == "AP_WRAP_SM")
      throw InputError(what + ": " + q + ": AP_WRAP_SM is not supported (kiln's host ap_fixed model " +
                       "does not model it); use AP_WRAP, AP_SAT, AP_SAT_ZERO or AP_SAT_SYM");
    if (!o_modes().count(args[3]))
      throw InputError(what + ": " + q + ": " + quoted(args[3]) + " is not an overflow mode (" +
                       join(o_modes()) + ")");
    out += ", " + args[3];
  }
  if (args.size() > 4) {
    if (args[4] != "0")
      throw InputError(what + ": " + q + ": saturation bits N = " + quoted(args[4]) +
                       " are not supported (kiln's host ap_fixed model needs N = 0)");
    out += ", 0";
  }
  return out + ">";
}

std::string export_c(const Tree& t, const ExportInfo& info) {
  check_function_name(info.function);
  std::ostringstream os;
  os << header(t, info, "C99 function");
  if (needs_libm(t)) os << "#include <math.h>\n\n";
  for (Op op : ops_used(t)) {
    switch (op) {
      case Op::kSquare:
        os << "static float kiln_square(float a) { return a * a; }\n";
        break;
      case Op::kCube:
        os << "static float kiln_cube(float a) { return a * a * a; }\n";
        break;
      case Op::kAq:
        os << "static float kiln_aq(float a, float b) { return a / sqrtf(1.0f + b * b); }\n";
        break;
      case Op::kGauss:
        os << "static float kiln_gauss(float a) { return expf(-(a * a)); }\n";
        break;
      default:
        break;
    }
    if (!is_lut(op)) continue;
    const Lut& l = lut_table(op);
    std::string name = lname(op);
    os << "\n/* " << op_info(op).name << ": " << l.spec.size << " entries of " << op_info(lut_base(op)).name
       << " on [" << l.spec.lo << ", " << l.spec.hi << "), entry j = f(lo + j (hi - lo) / N) */\n";
    os << "static const float " << name << "_table[" << l.spec.size << "] = {" << table_literal(l, "", false)
       << "\n};\n";
    os << "static float " << name << "(float x) {\n"
       << "  float f = (x - " << c_float(l.spec.lo) << ") * " << c_float(l.scale) << ";\n"
       << "  f = f > 0.0f ? f : 0.0f; /* also NaN -> 0 */\n"
       << "  f = f < " << c_float(static_cast<float>(l.spec.size - 1))
       << " ? f : " << c_float(static_cast<float>(l.spec.size - 1)) << ";\n"
       << "  return " << name << "_table[(int)f];\n}\n";
  }
  os << "\nfloat " << info.function << "(const float x[" << std::max(info.features, 1) << "]) {\n";
  os << "  return " << emit(t, static_cast<int>(t.size()) - 1, false) << ";\n}\n";
  return os.str();
}

std::string export_hls(const Tree& t, const ExportInfo& info) {
  check_function_name(info.function);
  const std::string type = hls_fixed_type(info.hls_type), table_type = hls_fixed_type(info.hls_table_type);
  std::ostringstream os;
  os << header(t, info, "HLS C++ function");
  os << "#include \"ap_fixed.h\"\n";
  if (needs_libm(t)) os << "#include \"hls_math.h\"\n";  // table ops and arithmetic need no math library
  os << "\n";
  os << "typedef " << type << " kiln_t;\n";
  os << "typedef " << table_type << " kiln_table_t;\n";
  os << "typedef ap_fixed<32, 16> kiln_index_t;\n\n";
  for (Op op : ops_used(t)) {
    switch (op) {
      case Op::kSquare:
        os << "static kiln_t kiln_square(kiln_t a) { return kiln_t(a * a); }\n";
        break;
      case Op::kCube:
        os << "static kiln_t kiln_cube(kiln_t a) { return kiln_t(kiln_t(a * a) * a); }\n";
        break;
      case Op::kAq:
        os << "static kiln_t kiln_aq(kiln_t a, kiln_t b) { return kiln_t(a / hls::sqrt(kiln_t(1) + kiln_t(b "
              "* b))); }\n";
        break;
      case Op::kGauss:
        os << "static kiln_t kiln_gauss(kiln_t a) { return kiln_t(hls::exp(kiln_t(-(a * a)))); }\n";
        break;
      default:
        break;
    }
    if (!is_lut(op)) continue;
    const Lut& l = lut_table(op);
    std::string name = lname(op);
    os << "\nstatic const kiln_table_t " << name << "_table[" << l.spec.size << "] = {"
       << table_literal(l, "kiln_table_t", true) << "\n};\n";
    os << "static kiln_t " << name << "(kiln_t x) {\n"
       << "#pragma HLS INLINE\n"
       << "  kiln_index_t f = (kiln_index_t(x) - kiln_index_t(" << c_float(l.spec.lo) << ")) * kiln_index_t("
       << c_float(l.scale) << ");\n"
       << "  int i = f < 0 ? 0 : f.to_int();\n"
       << "  if (i > " << l.spec.size - 1 << ") i = " << l.spec.size - 1 << ";\n"
       << "  return kiln_t(" << name << "_table[i]);\n}\n";
  }
  os << "\nvoid " << info.function << "(const kiln_t x[" << std::max(info.features, 1)
     << "], kiln_t y[1]) {\n";
  os << "#pragma HLS PIPELINE\n";
  os << "  y[0] = " << emit(t, static_cast<int>(t.size()) - 1, true) << ";\n}\n";
  return os.str();
}

}  // namespace kiln::symreg
