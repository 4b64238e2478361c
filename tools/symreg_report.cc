#include "tools/symreg_report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "tools/json.h"
#include "tools/plot.h"

namespace kiln::symreg {
namespace {

std::string g(double v, int prec = 6) {
  if (!std::isfinite(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", prec, v);
  return buf;
}

std::string csv_quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

std::string front_table(const Output& o, const std::vector<std::string>& names) {
  std::ostringstream os;
  const char* metric = o.classification ? "test AUC" : "test R^2";
  os << o.name << ": Pareto front (" << o.front.size() << " expressions, loss " << o.loss << ", "
     << o.generations << " generations, " << g(o.seconds, 3) << " s, stopped on " << o.stop_reason << ")\n";
  char buf[128];
  std::snprintf(buf, sizeof buf, "  %10s  %12s  %10s  %s\n", "complexity", "loss", metric, "expression");
  os << buf;
  for (size_t i = 0; i < o.front.size(); ++i) {
    const Candidate& c = o.front[i];
    std::snprintf(buf, sizeof buf, "%s %10d  %12.6g  %10s  ", i == o.selected ? "*" : " ", c.complexity,
                  c.loss, g(o.test_metric[i], 5).c_str());
    os << buf << to_infix(c.tree, names) << "\n";
  }
  os << "  (* = selected)\n";
  return os.str();
}

std::string front_json(const std::vector<Output>& outs, const std::vector<std::string>& names) {
  std::vector<std::string> items;
  for (const Output& o : outs) {
    std::vector<std::string> entries;
    for (size_t i = 0; i < o.front.size(); ++i) {
      json::Object e;
      e.num("complexity", o.front[i].complexity).num("loss", o.front[i].loss).num("score", o.front[i].score);
      e.num(o.classification ? "train_auc" : "train_r2", o.train_metric[i]);
      e.num(o.classification ? "test_auc" : "test_r2", o.test_metric[i]);
      e.text("expression", to_infix(o.front[i].tree, names, 9));
      entries.push_back(e.dump(6));
    }
    json::Object j;
    j.text("output", o.name).text("loss", o.loss).add("classification", o.classification ? "true" : "false");
    j.num("generations", o.generations).num("seconds", o.seconds).text("stop_reason", o.stop_reason);
    j.num("selected", static_cast<double>(o.selected));
    j.add("front", json::array(entries, [](const std::string& s) { return s; }));
    items.push_back(j.dump(2));
  }
  json::Object root;
  root.add("features", json::array(names, [](const std::string& s) { return json::str(s); }));
  root.add("outputs", json::array(items, [](const std::string& s) { return s; }));
  return root.dump() + "\n";
}

std::string front_csv(const std::vector<Output>& outs, const std::vector<std::string>& names) {
  std::ostringstream os;
  os << "output,complexity,loss,score,train_metric,test_metric,selected,expression\n";
  for (const Output& o : outs)
    for (size_t i = 0; i < o.front.size(); ++i)
      os << csv_quote(o.name) << ',' << o.front[i].complexity << ',' << g(o.front[i].loss, 9) << ','
         << g(o.front[i].score, 6) << ',' << g(o.train_metric[i], 6) << ',' << g(o.test_metric[i], 6) << ','
         << (i == o.selected ? 1 : 0) << ',' << csv_quote(to_infix(o.front[i].tree, names, 9)) << '\n';
  return os.str();
}

void write_front_svg(const std::string& path, const std::vector<Output>& outs) {
  plot::Chart loss{"Pareto front", "complexity", "loss", {}};
  plot::Chart metric{outs.empty() || !outs[0].classification ? "Test R^2" : "Test AUC",
                     "complexity",
                     outs.empty() || !outs[0].classification ? "R^2" : "AUC",
                     {}};
  for (const Output& o : outs) {
    plot::Series s{o.name, {}, {}, true}, m{o.name, {}, {}, true};
    for (size_t i = 0; i < o.front.size(); ++i) {
      s.x.push_back(o.front[i].complexity), s.y.push_back(o.front[i].loss);
      m.x.push_back(o.front[i].complexity), m.y.push_back(o.test_metric[i]);
    }
    loss.series.push_back(s), metric.series.push_back(m);
  }
  plot::write_svg(path, {loss, metric});
}

}  // namespace kiln::symreg
