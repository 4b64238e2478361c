#include "tools/scan_report.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/check.h"
#include "tools/plot.h"
#include "tools/run_dir.h"
#include "tools/scan_trial.h"

namespace kiln::scan {

std::vector<Result> read_journal(const std::string& path) {
  std::vector<Result> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(result_from_json(line));
    } catch (const std::exception&) {
      if (in.peek() != EOF)  // only the last line may be torn
        throw InputError(path + ": line " + std::to_string(out.size() + 1) +
                         " is not a trial record; the scan's journal is damaged");
    }
  }
  return out;
}

void append_journal(const std::string& path, const Result& r) {
  const std::string line = result_to_json(r) + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) throw InputError("cannot append to " + path);
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::fsync(fd);
  ::close(fd);
  if (!ok) throw InputError("cannot append to " + path + " (disk full?)");
}

std::vector<std::string> metric_columns(const ScanSpec& s, const std::vector<Result>& results) {
  std::vector<std::string> cols;
  for (const auto& o : s.objectives) cols.push_back(o.metric);
  for (const char* k : {"final_val_accuracy", "test_accuracy", "ebops", "ebops_uniform_8bit", "sparsity",
                        "multiplications", "nonzero_multiplications", "flash_bytes", "deployed_mismatches",
                        "parameters", "epochs", "best_epoch"}) {
    if (std::find(cols.begin(), cols.end(), k) != cols.end()) continue;
    for (const auto& r : results)
      if (r.metrics.count(k)) {
        cols.push_back(k);
        break;
      }
  }
  return cols;
}

namespace {

std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
  return q + "\"";
}

std::string table(const ScanSpec& s, const std::vector<Result>& rows, const std::vector<std::string>& cols) {
  std::ostringstream os;
  os << "trial,generation,status";
  for (const auto& p : s.params) os << ',' << csv_field(p.path);
  for (const auto& c : cols) os << ',' << c;
  os << ",seconds,rank,run_dir,error\n";
  for (const auto& r : rows) {
    os << trial_name(r.trial.id) << ',' << r.trial.generation << ',' << (r.ok ? "ok" : "failed");
    for (size_t k = 0; k < s.params.size(); ++k)
      os << ',' << csv_field(k < r.trial.values.size() ? r.trial.values[k] : "");
    for (const auto& c : cols) {
      auto it = r.metrics.find(c);
      os << ',' << (it == r.metrics.end() ? "" : number_text(it->second));
    }
    char sec[32];
    std::snprintf(sec, sizeof sec, "%.1f", r.seconds);
    os << ',' << sec << ',' << r.rank << ",trials/" << trial_name(r.trial.id) << ',' << csv_field(r.error)
       << '\n';
  }
  return os.str();
}

}  // namespace

std::vector<int> write_tables(const std::string& dir, const ScanSpec& s, std::vector<Result> results) {
  std::sort(results.begin(), results.end(),
            [](const Result& a, const Result& b) { return a.trial.id < b.trial.id; });
  const std::vector<std::string> cols = metric_columns(s, results);
  write_text(dir + "/scan.csv", table(s, results, cols));
  const std::vector<size_t> front = pareto_front(s, results);
  std::vector<Result> fr;
  std::vector<int> ids;
  for (size_t i : front) fr.push_back(results[i]), ids.push_back(results[i].trial.id);
  write_text(dir + "/front.csv", table(s, fr, cols));
  // The chart: the first objective against the second (or against the trial number with one objective).
  const Objective& oy = s.objectives[0];
  const bool two = s.objectives.size() > 1;
  const std::string xlabel = two ? s.objectives[1].metric : "trial";
  plot::Series all{"trials", {}, {}, true}, line{"Pareto front", {}, {}, true};
  double lo = INFINITY, hi = 0;
  for (const auto& r : results) {
    if (!r.ok || !r.metrics.count(oy.metric)) continue;
    const double x = two ? (r.metrics.count(xlabel) ? r.metrics.at(xlabel) : NAN) : r.trial.id;
    all.x.push_back(x), all.y.push_back(r.metrics.at(oy.metric));
    if (x > 0) lo = std::min(lo, x), hi = std::max(hi, x);
  }
  for (const auto& r : fr) {
    line.x.push_back(two ? r.metrics.at(xlabel) : r.trial.id);
    line.y.push_back(r.metrics.at(oy.metric));
  }
  if (two) {
    std::vector<size_t> o(line.x.size());
    for (size_t i = 0; i < o.size(); ++i) o[i] = i;
    std::sort(o.begin(), o.end(), [&](size_t a, size_t b) { return line.x[a] < line.x[b]; });
    plot::Series sorted{line.name, {}, {}, true};
    for (size_t i : o) sorted.x.push_back(line.x[i]), sorted.y.push_back(line.y[i]);
    line = sorted;
  }
  plot::Chart c{"Scan: " + oy.metric + (two ? " vs " + xlabel : "") + " (" + std::to_string(results.size()) +
                    " trials)",
                xlabel,
                oy.metric,
                {all, line},
                two && hi / lo > 20};
  plot::write_svg(dir + "/front.svg", {c});
  return ids;
}

std::string objectives_text(const ScanSpec& s, const Result& r) {
  std::ostringstream os;
  for (const auto& o : s.objectives) {
    auto it = r.metrics.find(o.metric);
    os << (os.tellp() > 0 ? " " : "") << o.metric << ' ';
    if (it == r.metrics.end()) {
      os << '-';
    } else {
      char b[32];
      std::snprintf(b, sizeof b, "%.6g", it->second);
      os << b;
    }
  }
  return os.str();
}

}  // namespace kiln::scan
