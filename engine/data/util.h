// Private helpers shared by the loaders: error messages and class-name tables.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "engine/check.h"

namespace kiln::data::detail {

[[noreturn]] inline void fail(const std::string& msg) { throw InputError(msg); }

// Text from a file, fit for a one-line message: control bytes escaped, clipped to 40 bytes (at a UTF-8
// character boundary) + "...".
// A message quotes at most this much of whatever the file holds (a 50 MB line gives a short message).
inline std::string clip(std::string_view v) {
  constexpr size_t kMax = 40;
  size_t cut = v.size() < kMax ? v.size() : kMax;
  while (cut > 0 && cut < v.size() && (static_cast<unsigned char>(v[cut]) & 0xc0) == 0x80) --cut;  // UTF-8
  std::string out;
  for (size_t i = 0; i < cut; ++i) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (cut < v.size()) out += "...";
  return out;
}

// A value from a file, clipped as above and quoted: 'abc'.
inline std::string show_value(std::string_view v) { return "'" + clip(v) + "'"; }

// A number for a message: "-3", "0.5", "1e+300".
inline std::string fmt_num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

inline const char* nonfinite_name(float v) { return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }

// The most classes a dataset may have. Labels that are class indices make one class name per index up
// to the largest, so a stray label of 2^31 - 1 would otherwise ask for two billion names.
constexpr int kMaxClasses = 1 << 16;

// "0", "1", ..., "max_label": class names for files whose labels already are class indices.
inline std::vector<std::string> index_class_names(const std::vector<int>& labels) {
  int max_label = -1;
  for (int l : labels) max_label = l > max_label ? l : max_label;
  std::vector<std::string> names;
  for (int i = 0; i <= max_label; ++i) names.push_back(std::to_string(i));
  return names;
}

}  // namespace kiln::data::detail
