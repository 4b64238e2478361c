// CSV loading: one pass over the (decompressed) file, fields as string_views into it, numbers parsed
// with std::from_chars. Errors name path:line, the column and the offending text.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <string_view>
#include <unordered_map>

#include "engine/data/gzfile.h"
#include "engine/data/loaders.h"
#include "engine/data/util.h"

namespace kiln::data {

using detail::fail;
using detail::show_value;

namespace {

struct Field {
  std::string_view text;  // without surrounding quotes and whitespace
  bool escaped = false;   // quoted and holds a doubled quote character
};

bool is_space(char c) { return c == ' ' || c == '\t'; }

// The field's text with doubled quotes ("" or '') collapsed.
std::string field_text(const Field& f) {
  if (!f.escaped) return std::string(f.text);
  std::string out;
  for (size_t i = 0; i < f.text.size(); ++i) {
    out += f.text[i];
    if ((f.text[i] == '"' || f.text[i] == '\'') && i + 1 < f.text.size() && f.text[i + 1] == f.text[i]) ++i;
  }
  return out;
}

// Splits one line (no line terminator) into `out`. Returns an error message, or "" on success.
// delim ' ' splits at runs of spaces and tabs and ignores them at both ends of the line.
std::string split_fields(std::string_view line, char delim, std::vector<Field>& out) {
  out.clear();
  const bool ws_delim = delim == ' ';
  const size_t n = line.size();
  auto at_delim = [&](size_t i) { return ws_delim ? is_space(line[i]) : line[i] == delim; };
  auto skip_space = [&](size_t i) {
    while (i < n && is_space(line[i]) && (ws_delim || line[i] != delim)) ++i;
    return i;
  };
  size_t i = ws_delim ? skip_space(0) : 0;
  for (;;) {
    i = skip_space(i);
    Field f;
    if (i < n && (line[i] == '"' || line[i] == '\'')) {
      const char q = line[i];
      const size_t start = i + 1;
      size_t j = start;
      for (;;) {
        const void* hit = j < n ? std::memchr(line.data() + j, q, n - j) : nullptr;
        if (!hit)
          return std::string("unterminated ") + (q == '"' ? "\"" : "'") + " quote in field " +
                 std::to_string(out.size() + 1);
        j = static_cast<size_t>(static_cast<const char*>(hit) - line.data());
        if (j + 1 < n && line[j + 1] == q) {
          f.escaped = true;
          j += 2;
          continue;
        }
        break;
      }
      f.text = line.substr(start, j - start);
      i = skip_space(j + 1);
      if (i < n && !at_delim(i))
        return "unexpected text " + show_value(line.substr(i)) + " after the closing quote of field " +
               std::to_string(out.size() + 1);
    } else {
      const size_t start = i;
      while (i < n && !at_delim(i)) ++i;
      size_t end = i;
      while (end > start && is_space(line[end - 1])) --end;
      f.text = line.substr(start, end - start);
    }
    out.push_back(f);
    if (i >= n) return "";
    if (ws_delim) {
      i = skip_space(i);
      if (i >= n) return "";
    } else {
      ++i;  // past the delimiter; a delimiter at the very end leaves one empty field
    }
  }
}

// Parses a whole field as a float. Returns "" on success, else why not.
std::string parse_float(std::string_view s, float& v) {
  if (s.empty()) return "empty field where a number is expected";
  std::string_view t = s.size() > 1 && s[0] == '+' && s[1] != '-' ? s.substr(1) : s;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ptr != t.data() + t.size() || ec == std::errc::invalid_argument)
    return "cannot parse " + show_value(s) + " as a number";
  if (ec == std::errc::result_out_of_range) {
    double d = std::strtod(std::string(t).c_str(), nullptr);
    if (std::fabs(d) > std::numeric_limits<float>::max())
      return "value " + show_value(s) + " is out of float32 range";
    v = static_cast<float>(d);  // an underflow to 0 or a denormal
  }
  return "";
}

bool parse_int(std::string_view s, long long& v) {
  if (s.size() > 1 && s[0] == '+') s.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

// The header's names for a message: each one clipped, and only as many as fit in a line.
std::string column_list(const std::vector<std::string>& names) {
  constexpr size_t kMaxChars = 300;
  std::string out;
  size_t shown = 0;
  for (; shown < names.size() && out.size() < kMaxChars; ++shown)
    out += (shown ? ", " : "") + detail::clip(names[shown]);
  if (shown < names.size()) out += ", ... (" + std::to_string(names.size()) + " columns)";
  return out;
}

// Column index for a name (header) or a 0-based index as text (no header); `what` is "label" or "feature".
int resolve_column(const CsvOptions& opt, const std::vector<std::string>& names, const std::string& spec,
                   const char* what) {
  const int ncols = static_cast<int>(names.size());
  if (opt.header) {
    auto it = std::find(names.begin(), names.end(), spec);
    if (it == names.end())
      fail(opt.path + ": no column named " + show_value(spec) + " for the " + what +
           "; the columns are: " + column_list(names));
    if (std::find(it + 1, names.end(), spec) != names.end())
      fail(opt.path + ": the header names column " + show_value(spec) + " more than once");
    return static_cast<int>(it - names.begin());
  }
  long long k = 0;
  if (!parse_int(spec, k))
    fail(opt.path + ": " + what + " column " + show_value(spec) +
         " is not a column index (header=false: use 0-based indices such as '0' or '-1')");
  if (k < -ncols || k >= ncols)
    fail(opt.path + ": " + what + " column index " + spec + " is out of range for " + std::to_string(ncols) +
         " columns (0.." + std::to_string(ncols - 1) + ", or negative from the end)");
  return static_cast<int>(k < 0 ? k + ncols : k);
}

// Distinct label texts (numbered in order of first appearance) -> sorted class table.
struct LabelTable {
  std::unordered_map<std::string, int> id;  // text -> first-seen id
  std::vector<std::string> text;            // first-seen id -> text
  std::vector<int64_t> first_line;          // first-seen id -> line

  int intern(std::string s, int64_t line) {
    auto [it, inserted] = id.emplace(std::move(s), static_cast<int>(text.size()));
    if (inserted) {
      text.push_back(it->first);
      first_line.push_back(line);
    }
    return it->second;
  }

  // Sorts the classes (numerically if all are integers) and returns first-seen id -> class index.
  std::vector<int> sort(const std::string& path, const std::string& label_col,
                        std::vector<std::string>& class_names) const {
    const size_t k = text.size();
    std::vector<long long> ival(k);
    bool all_int = true, all_num = true;
    size_t first_frac = k;
    for (size_t i = 0; i < k; ++i) {
      if (parse_int(text[i], ival[i])) continue;
      all_int = false;
      float v;
      if (parse_float(text[i], v).empty()) {
        if (first_frac == k || first_line[i] < first_line[first_frac]) first_frac = i;
      } else {
        all_num = false;
      }
    }
    if (!all_int && all_num)
      fail(path + ":" + std::to_string(first_line[first_frac]) + ": class label column " + label_col +
           " holds the non-integer number " + show_value(text[first_frac]) +
           "; set regression=true to regress it");
    std::vector<int> order(k);
    for (size_t i = 0; i < k; ++i) order[i] = static_cast<int>(i);
    std::sort(order.begin(), order.end(), [&](int a, int b) {
      if (all_int && ival[a] != ival[b]) return ival[a] < ival[b];
      return text[a] < text[b];
    });
    std::vector<int> remap(k);
    class_names.clear();
    for (size_t c = 0; c < k; ++c) {
      remap[order[c]] = static_cast<int>(c);
      class_names.push_back(text[order[c]]);
    }
    return remap;
  }
};

}  // namespace

Dataset load_csv(const CsvOptions& opt) {
  const std::string bytes = read_file(opt.path);
  const std::string& path = opt.path;
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  if (bytes.size() >= 3 && std::memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;  // UTF-8 byte-order mark

  int64_t line_no = 0;
  // Next non-blank line into `line`; false at the end of the file.
  auto next_line = [&](std::string_view& line) {
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* stop = nl ? nl : end;
      line = std::string_view(p, static_cast<size_t>(stop - p));
      p = nl ? nl + 1 : end;
      ++line_no;
      while (!line.empty() && (line.back() == '\r' || is_space(line.back()))) line.remove_suffix(1);
      size_t k = 0;
      while (k < line.size() && is_space(line[k])) ++k;
      if (k < line.size()) return true;
    }
    return false;
  };
  auto split_or_fail = [&](std::string_view line, std::vector<Field>& fields) {
    std::string err = split_fields(line, opt.delimiter, fields);
    if (!err.empty()) fail(path + ":" + std::to_string(line_no) + ": " + err);
  };

  std::vector<Field> fields;
  std::string_view line;
  if (!next_line(line)) fail(path + ": empty file (no header and no data)");
  split_or_fail(line, fields);
  const size_t ncols = fields.size();
  std::vector<std::string> names;
  bool pending_row = false;  // without a header the first line is data
  for (size_t c = 0; c < ncols; ++c)
    names.push_back(opt.header ? field_text(fields[c]) : "col" + std::to_string(c));
  if (!opt.header) pending_row = true;
  const int64_t first_line_no = line_no;

  const int label =
      opt.label.empty() ? static_cast<int>(ncols) - 1 : resolve_column(opt, names, opt.label, "label");
  std::vector<int> feats;
  if (opt.features.empty()) {
    for (int c = 0; c < static_cast<int>(ncols); ++c)
      if (c != label) feats.push_back(c);
  } else {
    for (const std::string& f : opt.features) {
      int c = resolve_column(opt, names, f, "feature");
      if (c == label) fail(path + ": column " + show_value(names[c]) + " is both the label and a feature");
      if (std::find(feats.begin(), feats.end(), c) != feats.end())
        fail(path + ": feature column " + show_value(names[c]) + " is listed twice");
      feats.push_back(c);
    }
  }
  if (feats.empty()) fail(path + ": no feature columns (the only column is the label)");

  auto where = [&](int c) {
    return path + ":" + std::to_string(line_no) + ": column " + show_value(names[c]) + " (field " +
           std::to_string(c + 1) + "): ";
  };
  auto number = [&](const Field& f, int c) {
    float v;
    std::string err = parse_float(f.text, v);
    if (!err.empty()) fail(where(c) + err);
    if (!std::isfinite(v)) fail(where(c) + "value " + show_value(f.text) + " is not finite");
    return v;
  };

  std::vector<float> xs, ts;
  std::vector<int> ids;
  LabelTable table;
  // Every row has a line; every feature value takes at least one character and a delimiter. The second
  // bound matters for a wide header followed by blank lines, where the first would be rows x columns.
  const size_t max_rows = static_cast<size_t>(std::count(p, end, '\n')) + 1;
  xs.reserve(std::min(feats.size() * max_rows, static_cast<size_t>(end - p) / 2 + feats.size()));
  if (opt.regression)
    ts.reserve(max_rows);
  else
    ids.reserve(max_rows);
  int64_t rows = 0;
  while (pending_row || next_line(line)) {
    if (!pending_row) split_or_fail(line, fields);
    pending_row = false;
    if (fields.size() != ncols)
      fail(path + ":" + std::to_string(line_no) + ": expected " + std::to_string(ncols) + " fields (as " +
           (opt.header ? "in the header" : "on line " + std::to_string(first_line_no)) + ") but found " +
           std::to_string(fields.size()));
    for (int c : feats) xs.push_back(number(fields[static_cast<size_t>(c)], c));
    const Field& lf = fields[static_cast<size_t>(label)];
    if (opt.regression) {
      ts.push_back(number(lf, label));
    } else {
      if (lf.text.empty()) fail(where(label) + "empty class label");
      ids.push_back(table.intern(field_text(lf), line_no));
    }
    ++rows;
  }
  if (rows == 0) fail(path + ": no data rows after the header");

  Dataset d;
  d.source = path;
  d.x = Tensor({rows, static_cast<int64_t>(feats.size())}, std::move(xs));
  for (int c : feats) d.feature_names.push_back(names[static_cast<size_t>(c)]);
  if (opt.regression) {
    d.targets = Tensor({rows, 1}, std::move(ts));
  } else {
    std::vector<int> remap = table.sort(path, show_value(names[static_cast<size_t>(label)]), d.class_names);
    d.labels.resize(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) d.labels[i] = remap[static_cast<size_t>(ids[i])];
  }
  return d;
}

}  // namespace kiln::data
