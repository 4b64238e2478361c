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

// A value from a file, fit for a one-line message: quoted, control bytes escaped, long values clipped.
inline std::string show_value(std::string_view v) {
  constexpr size_t kMax = 40;
  std::string out = "'";
  for (size_t i = 0; i < v.size() && i < kMax; ++i) {
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
  if (v.size() > kMax) out += "...";
  return out + "'";
}

// A number for a message: "-3", "0.5", "1e+300".
inline std::string fmt_num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

inline const char* nonfinite_name(float v) { return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }

// "0", "1", ..., "max_label": class names for files whose labels already are class indices.
inline std::vector<std::string> index_class_names(const std::vector<int>& labels) {
  int max_label = -1;
  for (int l : labels) max_label = l > max_label ? l : max_label;
  std::vector<std::string> names;
  for (int i = 0; i <= max_label; ++i) names.push_back(std::to_string(i));
  return names;
}

}  // namespace kiln::data::detail
