#include "tools/symreg_report.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/check.h"
#include "symreg/codegen.h"
#include "tools/plot.h"
#include "tools/progress.h"

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

size_t best_by_train_metric(const Output& o) {
  size_t best = 0;
  for (size_t i = 1; i < o.front.size(); ++i) {
    const double a = o.train_metric[i], b = o.train_metric[best];
    // NaN (a non-finite prediction) never wins; on a tie the simpler entry (the front is in complexity order)
    // stays.
    if (std::isfinite(a) && (!std::isfinite(b) || a > b)) best = i;
  }
  return best;
}

std::string front_table(const Output& o, const std::vector<std::string>& names) {
  std::ostringstream os;
  const char* metric = o.classification ? "test AUC" : "test R^2";
  os << o.name << ": Pareto front (" << o.front.size() << " expressions, loss " << o.loss
     << (o.fitted_to.empty() ? "" : " on " + o.fitted_to) << ", " << o.generations << " generations, "
     << g(o.seconds, 3) << " s, " << compact_number(o.seconds > 0 ? o.node_evals / o.seconds : 0)
     << " node evals/s"
     << (o.ranks > 1 ? " on " + std::to_string(o.ranks) + " ranks x " + std::to_string(o.islands / o.ranks) +
                           " islands"
                     : std::string())
     << ", stopped on " << o.stop_reason << ")\n";
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
  if (o.teacher && !o.front.empty()) {
    const size_t b = best_by_train_metric(o);
    const double gap = 100 * (o.test_metric[b] - o.teacher_test_auc);
    os << "  teacher AUC " << g(o.teacher_test_auc, 5) << ", best expression AUC " << g(o.test_metric[b], 5)
       << " (complexity " << o.front[b].complexity
       << "; test rows, true labels; the front's highest train AUC): "
       << (std::isfinite(gap) ? (gap >= 0 ? "+" : "") + g(gap, 3) + " pp" : std::string("n/a")) << "\n";
  }
  return os.str();
}

std::string front_json(const std::vector<Output>& outs, const std::vector<std::string>& names) {
  using Json = nlohmann::ordered_json;
  Json items = Json::array();
  for (const Output& o : outs) {
    Json entries = Json::array();
    for (size_t i = 0; i < o.front.size(); ++i) {
      Json e;
      e["complexity"] = o.front[i].complexity;
      e["loss"] = o.front[i].loss;
      e["score"] = o.front[i].score;
      e[o.classification ? "train_auc" : "train_r2"] = o.train_metric[i];
      e[o.classification ? "test_auc" : "test_r2"] = o.test_metric[i];
      e["expression"] = to_infix(o.front[i].tree, names, 9);
      entries.push_back(std::move(e));
    }
    Json j;
    j["output"] = o.name;
    j["loss"] = o.loss;
    j["classification"] = o.classification;
    if (o.teacher) {
      j["fitted_to"] = o.fitted_to;
      j["teacher_train_auc"] = o.teacher_train_auc;
      j["teacher_test_auc"] = o.teacher_test_auc;
      j["best_by_train_auc"] = o.front.empty() ? 0 : best_by_train_metric(o);
    }
    j["generations"] = o.generations;
    j["seconds"] = o.seconds;
    j["node_evals"] = o.node_evals;
    j["node_evals_per_second"] = o.seconds > 0 ? o.node_evals / o.seconds : 0;
    j["ranks"] = o.ranks;
    j["islands"] = o.islands;
    j["stop_reason"] = o.stop_reason;
    j["selected"] = o.selected;
    j["front"] = std::move(entries);
    items.push_back(std::move(j));
  }
  Json root;
  root["features"] = names;
  root["outputs"] = std::move(items);
  return root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string front_csv(const std::vector<Output>& outs, const std::vector<std::string>& names) {
  std::ostringstream os;
  // With a teacher the metrics are AUCs (against the true labels) and the teacher's test AUC is a column;
  // the first seven columns keep their places and the expression stays last.
  const bool teacher = !outs.empty() && outs[0].teacher;
  os << (teacher ? "output,complexity,loss,score,train_auc,test_auc,selected,teacher_test_auc,expression\n"
                 : "output,complexity,loss,score,train_metric,test_metric,selected,expression\n");
  for (const Output& o : outs)
    for (size_t i = 0; i < o.front.size(); ++i) {
      os << csv_quote(o.name) << ',' << o.front[i].complexity << ',' << g(o.front[i].loss, 9) << ','
         << g(o.front[i].score, 6) << ',' << g(o.train_metric[i], 6) << ',' << g(o.test_metric[i], 6) << ','
         << (i == o.selected ? 1 : 0) << ',';
      if (teacher) os << g(o.teacher_test_auc, 6) << ',';
      os << csv_quote(to_infix(o.front[i].tree, names, 9)) << '\n';
    }
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
    if (o.teacher && !o.front.empty())  // the network's test AUC, a level line across the front
      metric.series.push_back(
          plot::Series{"teacher (" + o.name + ")",
                       {double(o.front.front().complexity), double(o.front.back().complexity)},
                       {o.teacher_test_auc, o.teacher_test_auc},
                       false});
  }
  plot::write_svg(path, {loss, metric});
}

std::vector<std::string> export_function_names(const std::string& function,
                                               const std::vector<std::string>& outputs,
                                               const std::string& data) {
  std::vector<std::string> functions;
  for (const std::string& output : outputs) {
    if (outputs.size() == 1) {
      functions.push_back(function);
      continue;
    }
    std::string suffix;
    for (char c : output.substr(output.find(' ') + 1)) {
      const bool keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (keep || (!suffix.empty() && suffix.back() != '_')) suffix += keep ? c : '_';
    }
    std::string name = function + "_" + suffix;
    check_function_name(name, "--function");
    for (size_t k = 0; k < functions.size(); ++k)
      if (functions[k] == name)
        throw InputError("--function: " + outputs[k] + " and " + output + " would both export '" + name +
                         "'; rename a class in " + data);
    functions.push_back(name);
  }
  return functions;
}

std::string predictions_csv(const std::vector<Output>& outs, const std::vector<std::string>& names,
                            const Columns& x_test, const std::vector<const float*>& teacher_scores,
                            Evaluator& ev) {
  const bool distil = !teacher_scores.empty();
  std::string csv;
  for (const std::string& n : names) csv += n + ",";
  for (size_t k = 0; k < outs.size(); ++k)
    csv += "pred_" + c_identifier(outs[k].name) + (k + 1 < outs.size() || distil ? "," : "\n");
  for (size_t k = 0; distil && k < outs.size(); ++k)  // then the teacher's scores
    csv += "teacher_" + c_identifier(outs[k].name) + (k + 1 < outs.size() ? "," : "\n");
  std::vector<AlignedFloats> preds;
  for (const Output& o : outs) {
    preds.emplace_back(static_cast<size_t>(x_test.padded()));
    ev.predict(o.front[o.selected].tree, x_test, preds.back().data());
  }
  char buf[32];
  for (int64_t r = 0; r < x_test.rows(); ++r) {
    for (int c = 0; c < x_test.features(); ++c)
      std::snprintf(buf, sizeof buf, "%.9g,", x_test.col(c)[r]), csv += buf;
    for (size_t k = 0; k < preds.size(); ++k)
      std::snprintf(buf, sizeof buf, "%.9g%s", preds[k][static_cast<size_t>(r)],
                    k + 1 < preds.size() || distil ? "," : "\n"),
          csv += buf;
    for (size_t k = 0; distil && k < teacher_scores.size(); ++k)
      std::snprintf(buf, sizeof buf, "%.9g%s", teacher_scores[k][r],
                    k + 1 < teacher_scores.size() ? "," : "\n"),
          csv += buf;
  }
  return csv;
}

std::string export_code(const std::string& format, const std::vector<Output>& outs,
                        const std::vector<std::string>& functions, const std::vector<std::string>& names,
                        const std::string& hls_type) {
  std::string code;
  for (size_t k = 0; k < outs.size(); ++k) {
    const Candidate& c = outs[k].front[outs[k].selected];
    ExportInfo info;
    info.function = functions[k];
    info.feature_names = names, info.features = static_cast<int>(names.size());
    info.hls_type = hls_type;
    info.comment = outs[k].name + ": complexity " + std::to_string(c.complexity) + ", train loss " +
                   std::to_string(c.loss) + (outs[k].classification ? ", test AUC " : ", test R^2 ") +
                   std::to_string(outs[k].test_metric[outs[k].selected]);
    code += (format == "c" ? export_c(c.tree, info) : export_hls(c.tree, info)) + "\n";
  }
  return code;
}

}  // namespace kiln::symreg
