// Strict reading of a YAML mapping: every key read is marked used; check_unused() turns any other key into
// an error naming the file, line, column and the valid keys (with a "did you mean" for typos). Type errors
// name the key and the text found. All errors are InputError with one line.
//
//   Config c(node, "data/jet.yaml", "layer 'fc1'");
//   int units = c.require<int>("units");
//   bool bias = c.get<bool>("use_bias", true);
//   c.check_unused({"units", "use_bias", "name", "type"});
#pragma once
#include <yaml-cpp/yaml.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/check.h"

namespace kiln {

class Config {
 public:
  Config() = default;
  Config(YAML::Node node, std::string file, std::string where);

  // The document's top-level mapping; `sections` names what such a file holds, for the error when the file
  // is not a mapping (a scan config: "base:, search:, parameters:").
  static Config load_file(const std::string& path, const std::string& sections = "data:, model:, training:");
  static Config parse(const std::string& text, const std::string& name, const std::string& where = "config");

  bool has(const std::string& key) const;
  template <class T>
  T get(const std::string& key, const T& fallback) const {
    return has(key) ? convert<T>(key) : fallback;
  }
  template <class T>
  T require(const std::string& key) const {
    if (!has(key)) fail_missing(key);
    return convert<T>(key);
  }
  // A nested mapping (must be a mapping if present; empty Config if absent and optional).
  Config child(const std::string& key, bool required = false) const;
  // A sequence of mappings.
  std::vector<Config> children(const std::string& key) const;
  YAML::Node raw(const std::string& key) const;  // marks used
  YAML::Node node() const { return node_; }
  bool defined() const { return node_.IsDefined() && !node_.IsNull(); }

  // Throws on any key not in `allowed`.
  void check_unused(const std::vector<std::string>& allowed) const;

  std::string location(const std::string& key) const;  // "file:line:col" of a key (or of the mapping)
  std::string location() const;
  const std::string& file() const { return file_; }
  const std::string& where() const { return where_; }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

 private:
  template <class T>
  T convert(const std::string& key) const {
    YAML::Node v = node_[key];
    used_->insert(key);
    try {
      return v.as<T>();
    } catch (const YAML::Exception&) {
      fail(key,
           "key '" + key + "' in " + where_ + " expects " + type_name<T>() + ", got '" + text_of(v) + "'");
    }
  }
  template <class T>
  static std::string type_name();
  static std::string text_of(const YAML::Node& v);
  [[noreturn]] void fail_missing(const std::string& key) const;

  YAML::Node node_;
  std::string file_, where_;
  std::shared_ptr<std::set<std::string>> used_ = std::make_shared<std::set<std::string>>();
};

template <>
inline std::string Config::type_name<int>() {
  return "an integer";
}
template <>
inline std::string Config::type_name<int64_t>() {
  return "an integer";
}
template <>
inline std::string Config::type_name<uint64_t>() {
  return "a non-negative integer";
}
template <>
inline std::string Config::type_name<double>() {
  return "a number";
}
template <>
inline std::string Config::type_name<float>() {
  return "a number";
}
template <>
inline std::string Config::type_name<bool>() {
  return "true or false";
}
template <>
inline std::string Config::type_name<std::string>() {
  return "a string";
}
template <>
inline std::string Config::type_name<std::vector<int>>() {
  return "a list of integers";
}
template <>
inline std::string Config::type_name<std::vector<int64_t>>() {
  return "a list of integers";
}
template <>
inline std::string Config::type_name<std::vector<double>>() {
  return "a list of numbers";
}
template <>
inline std::string Config::type_name<std::vector<std::string>>() {
  return "a list of strings";
}

// The first place where two YAML trees differ, as "path: what" (e.g. "layers[2].units: 64 vs 32"), or ""
// when they are equal. Scalars compare as text; `path` prefixes the reported key; *mark_a gets the position
// in `a` of the differing node (or of its nearest parent present in `a`).
std::string yaml_difference(const YAML::Node& a, const YAML::Node& b, const std::string& path,
                            YAML::Mark* mark_a);

// Closest candidate by edit distance, or "" when nothing is close (for "did you mean").
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace kiln
