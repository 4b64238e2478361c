#include "engine/config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "engine/utf8.h"

namespace kiln {

namespace {

// yaml-cpp keeps the first of two equal keys and drops the second without a word; a config whose
// `learning_rate:` appears twice would train with the value the user did not mean.
void reject_duplicate_keys(const YAML::Node& n, const std::string& file) {
  if (n.IsSequence()) {
    for (const YAML::Node& item : n) reject_duplicate_keys(item, file);
  } else if (n.IsMap()) {
    std::map<std::string, YAML::Mark> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->first.IsScalar()) {  // `? [a, b]: 1`, `!tag : 1`: every later lookup reads keys as names
        const YAML::Mark m = it->first.Mark();
        throw InputError(file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) +
                         ": a key must be a plain name, not " +
                         (it->first.IsNull()       ? "empty"
                          : it->first.IsSequence() ? "a list"
                                                   : "a mapping"));
      }
      const std::string k = it->first.Scalar();
      auto [at, fresh] = seen.emplace(k, it->first.Mark());
      if (!fresh) {
        const YAML::Mark m = it->first.Mark();
        throw InputError(file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) +
                         ": duplicate key '" + k + "' (first at line " + std::to_string(at->second.line + 1) +
                         ")");
      }
      reject_duplicate_keys(it->second, file);
    }
  }
}

}  // namespace

Config::Config(YAML::Node node, std::string file, std::string where)
    : node_(std::move(node)), file_(std::move(file)), where_(std::move(where)) {}

Config Config::load_file(const std::string& path, const std::string& sections) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open config '" + path + "': " + std::strerror(errno));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // YAML is UTF-8 text; names from it end up in reports and generated code.
  if (size_t at = invalid_utf8_at(text); at != std::string::npos) {
    const size_t nl = text.rfind('\n', at);  // the byte at `at` is >= 0x80, never the newline itself
    const size_t start = nl == std::string::npos ? 0 : nl + 1, end = text.find('\n', at);
    const auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(start), '\n') + 1;
    require_utf8(text.substr(start, end == std::string::npos ? std::string::npos : end - start),
                 path + ":" + std::to_string(line) + ":" + std::to_string(at - start + 1) + ": the config");
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw InputError(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                     ": YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) throw InputError(path + ": the config must be a YAML mapping (" + sections + ")");
  reject_duplicate_keys(root, path);
  return Config(root, path, "the top level");
}

Config Config::parse(const std::string& text, const std::string& name, const std::string& where) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw InputError(name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) throw InputError(name + ": expected a YAML mapping");
  reject_duplicate_keys(root, name);
  return Config(root, name, where);
}

bool Config::has(const std::string& key) const {
  if (!node_.IsMap()) return false;
  YAML::Node v = node_[key];
  return v.IsDefined() && !v.IsNull();
}

Config Config::child(const std::string& key, bool required) const {
  if (!has(key)) {
    if (required) fail_missing(key);
    used_->insert(key);
    return Config(YAML::Node(YAML::NodeType::Map), file_, key);
  }
  YAML::Node v = node_[key];
  used_->insert(key);
  if (!v.IsMap()) fail(key, "key '" + key + "' in " + where_ + " must be a mapping of keys");
  return Config(v, file_, "'" + key + "'");
}

std::vector<Config> Config::children(const std::string& key) const {
  std::vector<Config> out;
  if (!has(key)) return out;
  YAML::Node v = node_[key];
  used_->insert(key);
  if (!v.IsSequence()) fail(key, "key '" + key + "' in " + where_ + " must be a list");
  for (size_t i = 0; i < v.size(); ++i) {
    YAML::Node item = v[i];
    std::string w = "'" + key + "' item " + std::to_string(i + 1);
    if (!item.IsMap()) {
      auto m = item.Mark();
      throw InputError(file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " +
                       w + " must be a mapping (e.g. {type: dense, units: 16})");
    }
    out.emplace_back(item, file_, w);
  }
  return out;
}

YAML::Node Config::raw(const std::string& key) const {
  used_->insert(key);
  return node_[key];
}

void Config::check_unused(const std::vector<std::string>& allowed) const {
  if (!node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    std::string k = it->first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    auto m = it->first.Mark();
    std::string msg = file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) +
                      ": unknown key '" + k + "' in " + where_;
    std::string near = closest_match(k, allowed);
    if (!near.empty()) msg += "; did you mean '" + near + "'?";
    msg += " (valid keys: " + join(allowed) + ")";
    throw InputError(msg);
  }
}

std::string Config::location() const {
  auto m = node_.Mark();
  if (m.is_null()) return file_;
  return file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

std::string Config::location(const std::string& key) const {
  if (!node_.IsMap()) return location();
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.as<std::string>() == key) {
      auto m = it->first.Mark();
      return file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    }
  }
  return location();
}

void Config::fail(const std::string& key, const std::string& message) const {
  throw InputError(location(key) + ": " + message);
}

void Config::fail_missing(const std::string& key) const {
  throw InputError(location() + ": missing required key '" + key + "' in " + where_);
}

std::string Config::text_of(const YAML::Node& v) {
  // Quoted in one-line messages: a pasted 5,000-character value is shown by its start.
  if (v.IsScalar()) return v.Scalar().size() > 80 ? v.Scalar().substr(0, 77) + "..." : v.Scalar();
  if (v.IsSequence()) return "a list";
  if (v.IsMap()) return "a mapping";
  return "nothing";
}

std::string yaml_difference(const YAML::Node& a, const YAML::Node& b, const std::string& path,
                            YAML::Mark* mark_a) {
  auto show = [](const YAML::Node& n) -> std::string {
    if (!n.IsDefined() || n.IsNull()) return "absent";
    if (n.IsScalar()) return "'" + n.Scalar() + "'";
    YAML::Emitter e;
    e << YAML::Flow << n;
    std::string t = e.c_str();
    return t.size() > 60 ? t.substr(0, 57) + "..." : t;
  };
  const bool a_null = !a.IsDefined() || a.IsNull(), b_null = !b.IsDefined() || b.IsNull();
  if (!a_null && mark_a) *mark_a = a.Mark();
  if (a_null && b_null) return "";
  auto differ = [&] { return path + ": " + show(a) + " vs " + show(b); };
  if (a_null != b_null || a.Type() != b.Type()) return differ();
  if (a.IsScalar()) return a.Scalar() == b.Scalar() ? "" : differ();
  if (a.IsSequence()) {
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
      if (std::string d = yaml_difference(a[i], b[i], path + "[" + std::to_string(i) + "]", mark_a);
          !d.empty())
        return d;
    if (a.size() != b.size())
      return path + ": " + std::to_string(a.size()) + " items vs " + std::to_string(b.size());
    return "";
  }
  for (auto it = a.begin(); it != a.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (std::string d = yaml_difference(it->second, b[k], path + "." + k, mark_a); !d.empty()) return d;
  }
  for (auto it = b.begin(); it != b.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (!a[k].IsDefined() || a[k].IsNull())
      if (std::string d = yaml_difference(a[k], it->second, path + "." + k, mark_a); !d.empty()) return d;
  }
  return "";
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    std::vector<size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= c.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (word[i - 1] == c[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    if (prev[c.size()] < best_d) best_d = prev[c.size()], best = c;
  }
  return best;
}

}  // namespace kiln
