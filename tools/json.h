// A minimal JSON writer for the run reports (metrics.json): objects, arrays, numbers (NaN and inf as
// null, which JSON lacks), strings escaped.
#pragma once
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace kiln::json {

inline std::string str(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      o += '\\', o += static_cast<char>(c);
    else if (c == '\n')
      o += "\\n";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else
      o += static_cast<char>(c);
  }
  return o + "\"";
}

inline std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

template <class T, class F>
std::string array(const std::vector<T>& xs, F each) {
  std::string o = "[";
  for (size_t i = 0; i < xs.size(); ++i) o += (i ? ", " : "") + each(xs[i]);
  return o + "]";
}

// Object built key by key, in insertion order.
class Object {
 public:
  Object& add(const std::string& key, const std::string& raw_json) {
    items_.push_back(str(key) + ": " + raw_json);
    return *this;
  }
  Object& num(const std::string& key, double v) { return add(key, json::num(v)); }
  Object& text(const std::string& key, const std::string& v) { return add(key, str(v)); }
  std::string dump(int indent = 0) const {
    std::string pad(static_cast<size_t>(indent + 2), ' '), o = "{\n";
    for (size_t i = 0; i < items_.size(); ++i) o += pad + items_[i] + (i + 1 < items_.size() ? ",\n" : "\n");
    return o + std::string(static_cast<size_t>(indent), ' ') + "}";
  }

 private:
  std::vector<std::string> items_;
};

}  // namespace kiln::json
