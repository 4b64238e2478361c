// kiln compare: trains one config's model with each pruning method (and the unpruned baseline) and writes
// one table and one plot.
//
//   bazel run //tools:compare -- --config data/fashion_mnist_prune.yaml --jobs 2
//       --methods none,magnitude,pdp,pdp/structured_pruning=true,wanda/N=3/M=4,pdp+hgq
//
// A method token is `none` (no compression), `hgq` (quantization only), or a pruning_method, optionally
// with /key=value overrides of its keys and `+hgq` to add the config's quantization section. Every run is
// the config with its compression section replaced; unpruned runs train as many epochs as the pruning
// schedule in total (pretraining + rounds x epochs + fine-tuning), so every row had the same training. Each
// run exports C (its flash bytes and nonzero multiplications are in the table). Writes DIR/compare.md,
// compare.csv, compare.svg, and each run in DIR/runs/<label>/ with its log in DIR/logs/<label>.log.
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "compress/pruner.h"
#include "engine/config.h"
#include "tools/plot.h"
#include "tools/run_dir.h"
#include "tools/spawn.h"
#include "tools/tool_main.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

struct Flags {
  std::string config, methods = "none,magnitude,cs,dst,pdp,wanda,autosparse,activation_pruning,mdmm", out;
  int jobs = 1, epochs = 0, threads = 1;
  bool overwrite = false;
};

struct Variant {
  std::string token, label, method;  // method "" = no pruning
  bool hgq = false;
  std::vector<std::pair<std::string, std::string>> overrides;
};

Variant parse_token(const std::string& token) {
  Variant v;
  v.token = token;
  std::string t = token;
  if (t.size() > 4 && t.compare(t.size() - 4, 4, "+hgq") == 0) v.hgq = true, t.resize(t.size() - 4);
  std::stringstream parts(t);
  std::string part;
  std::getline(parts, part, '/');
  if (part == "hgq")
    v.hgq = true;
  else if (part != "none")
    v.method = part;
  if (!v.method.empty() && compress::prune_method_keys(v.method).empty()) {
    std::string known;
    for (const auto& n : compress::prune_method_names()) known += ", " + n;
    throw InputError("--methods: '" + token + "': unknown method '" + v.method + "'; known: none, hgq" +
                     known);
  }
  while (std::getline(parts, part, '/')) {
    auto eq = part.find('=');
    if (eq == std::string::npos || eq == 0 || v.method.empty())
      throw InputError("--methods: '" + token + "': an override is METHOD/key=value, got '" + part + "'");
    v.overrides.push_back({part.substr(0, eq), part.substr(eq + 1)});
  }
  // A label that is a file name: letters, digits, '-', '_', '.', '=' kept, the rest '_'.
  for (char c : token)
    v.label += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '=' ? c : '_';
  return v;
}

// The tokens of --methods: split at commas outside brackets, so that an override may be a YAML list
// (wanda/disable_pruning_for_layers=[conv1,output]).
std::vector<std::string> split_methods(const std::string& s) {
  std::vector<std::string> out;
  std::string tok;
  int depth = 0;
  for (char c : s) {
    depth += (c == '[' || c == '{') - (c == ']' || c == '}');
    if (c == ',' && depth <= 0) {
      if (!tok.empty()) out.push_back(tok);
      tok.clear();
    } else {
      tok += c;
    }
  }
  if (!tok.empty()) out.push_back(tok);
  return out;
}

// The config of one run: the user's, with the compression section and schedule set for the variant.
YAML::Node variant_config(const YAML::Node& base, const Variant& v, const compress::PruningOptions* sched,
                          const std::string& file) {
  YAML::Node c = YAML::Clone(base);
  YAML::Node comp = c["compression"];
  YAML::Node q = comp && comp["quantization"] ? YAML::Clone(comp["quantization"]) : YAML::Node();
  YAML::Node p = comp && comp["pruning"] ? YAML::Clone(comp["pruning"]) : YAML::Node();
  c.remove("compression");
  c.remove("output_dir");
  YAML::Node nc(YAML::NodeType::Map);
  if (v.hgq) {
    if (!q)
      throw InputError(file + ": --methods '" + v.token + "' needs a compression: quantization: section");
    q["enable_quantization"] = true;  // a config may keep it off for plain train runs
    nc["quantization"] = q;
  }
  if (!v.method.empty()) {
    YAML::Node pp = p ? p : YAML::Node(YAML::NodeType::Map);
    pp["pruning_method"] = v.method;
    // Into the method's own mapping: it wins over the section's top level (parse_pruning).
    for (const auto& [k, val] : v.overrides) pp[v.method][k] = YAML::Load(val);
    nc["pruning"] = pp;
  } else if (sched) {  // unpruned: the same number of epochs, no schedule keys
    YAML::Node t = c["training"];
    for (const auto& k : compress::prune_schedule_keys()) t.remove(k);
    t["epochs"] = sched->total_epochs();
  }
  if (nc.size() > 0) c["compression"] = nc;
  YAML::Node e(YAML::NodeType::Map);
  e["target"] = "c";
  e["dir"] = "firmware_c";
  c["export"] = e;
  return c;
}

double num_at(const YAML::Node& n, const std::string& key) {
  if (!n || !n[key] || n[key].IsNull()) return NAN;
  try {
    return n[key].as<double>();
  } catch (const YAML::Exception&) {
    return NAN;
  }
}

struct Row {
  Variant v;
  bool ok = false;
  std::string error;
  double accuracy = NAN, sparsity = NAN, units = NAN, kept_units = NAN, ebops = NAN, uniform = NAN,
         macs = NAN, nonzero = NAN, flash = NAN, seconds = NAN;
};

std::string fmt(double v, int prec, bool fixed = true) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream os;
  if (fixed) os << std::fixed;
  os << std::setprecision(prec) << v;
  return os.str();
}

int run(const Flags& f) {
  Config cfg = Config::load_file(f.config);
  const YAML::Node base = YAML::LoadFile(f.config);
  std::optional<compress::PruningOptions> sched;
  Config comp = cfg.child("compression");
  if (comp.has("pruning")) sched = compress::parse_pruning(comp.child("pruning"), cfg.child("training"));
  if (sched && f.epochs > 0) sched->common.epochs = f.epochs;
  std::vector<Variant> vs;
  std::map<std::string, int> labels;
  for (const std::string& tok : split_methods(f.methods)) {
    vs.push_back(parse_token(tok));
    if (labels[vs.back().label]++) throw InputError("--methods: '" + tok + "' is listed twice");
  }
  if (vs.empty()) throw InputError("--methods: no method given");
  const std::string out = !f.out.empty() ? f.out : "runs/compare_" + fs::path(f.config).stem().string();
  RunDir rd(out, "kiln compare", f.overwrite);
  fs::create_directories(rd.path("configs"));
  fs::create_directories(rd.path("logs"));
  fs::create_directories(rd.path("runs"));
  // The train command built beside this one ($KILN_TRAIN overrides it, e.g. outside Bazel).
  const char* env = std::getenv("KILN_TRAIN");
  const std::string train =
      env && *env ? std::string(env) : (fs::canonical("/proc/self/exe").parent_path() / "train").string();
  if (!fs::exists(train)) throw InputError("kiln compare: the train binary is not at " + train);

  std::vector<Row> rows(vs.size());
  std::map<pid_t, size_t> running;
  std::map<size_t, std::chrono::steady_clock::time_point> started;
  size_t next = 0, done = 0;
  auto launch = [&](size_t i) {
    const Variant& v = vs[i];
    const std::string cpath = rd.path("configs/" + v.label + ".yaml");
    YAML::Emitter em;
    em << variant_config(base, v, sched ? &*sched : nullptr, f.config);
    write_text(cpath, std::string(em.c_str()) + "\n");
    std::vector<std::string> args{train,
                                  "--config",
                                  cpath,
                                  "--out",
                                  rd.path("runs/" + v.label),
                                  "--quiet",
                                  "--threads",
                                  std::to_string(f.threads)};
    // Unpruned runs of a pruning config have the schedule's total in training.epochs already.
    if (f.epochs > 0 && (!v.method.empty() || !sched))
      args.insert(args.end(), {"--epochs", std::to_string(f.epochs)});
    const std::string log = rd.path("logs/" + v.label + ".log");
    const pid_t pid = spawn_logged(args, log);
    running[pid] = i;
    started[i] = std::chrono::steady_clock::now();
    std::cerr << "started " << v.token << " (" << (i + 1) << "/" << vs.size() << ")\n";
  };
  while (done < vs.size()) {
    while (next < vs.size() && static_cast<int>(running.size()) < f.jobs) launch(next++);
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) break;
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const size_t i = it->second;
    running.erase(it);
    ++done;
    Row& r = rows[i];
    r.v = vs[i];
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started[i]).count();
    r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const std::string dir = rd.path("runs/" + vs[i].label);
    if (!r.ok) {
      r.error = last_line(rd.path("logs/" + vs[i].label + ".log"));
      std::cerr << "failed  " << vs[i].token << ": " << r.error << "\n";
      continue;
    }
    YAML::Node m = YAML::LoadFile(dir + "/metrics.json");
    YAML::Node res = YAML::LoadFile(dir + "/firmware_c/resources.json");
    r.accuracy = num_at(m, "test_accuracy");
    r.sparsity = vs[i].method.empty() ? 0.0 : num_at(m, "sparsity");
    r.units = num_at(m, "units"), r.kept_units = num_at(m, "remaining_units");
    r.ebops = num_at(m, "ebops");
    r.uniform = num_at(m, "ebops_uniform_8bit");
    r.macs = num_at(res["total"], "multiplications");
    r.nonzero = num_at(res["total"], "nonzero_multiplications");
    r.flash = num_at(res, "flash_bytes");
    std::cerr << "done    " << vs[i].token << ": accuracy " << fmt(r.accuracy, 4) << ", sparsity "
              << fmt(r.sparsity, 3) << " (" << fmt(r.seconds, 0) << " s)\n";
  }

  // The table: accuracy against the unpruned baseline (`none`) when it ran.
  double base_acc = NAN;
  for (const auto& r : rows)
    if (r.ok && r.v.method.empty() && !r.v.hgq) base_acc = r.accuracy;
  std::ostringstream md, csv;
  md << "| method | sparsity | units removed | test accuracy | vs baseline (pp) | EBOPs | uniform 8-bit / "
        "EBOPs | nonzero MACs | flash bytes (C) | time (s) |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  csv << "method,sparsity,units,units_kept,test_accuracy,delta_pp,ebops,ebops_uniform_8bit,multiplications,"
         "nonzero_multiplications,flash_bytes,"
         "seconds,error\n";
  plot::Series pts{"runs", {}, {}, true};
  std::vector<plot::Series> each;
  int failed = 0;
  for (const auto& r : rows) {
    const double delta = (r.accuracy - base_acc) * 100;
    const double removed = r.units > 0 ? (r.units - r.kept_units) / r.units : NAN;
    if (!r.ok) {
      ++failed;
      md << "| " << r.v.token << " | failed: " << r.error << " | | | | | | | | " << fmt(r.seconds, 0)
         << " |\n";
    } else {
      md << "| " << r.v.token << " | " << fmt(r.sparsity, 3) << " | "
         << (r.v.method.empty() ? "-" : fmt(removed, 3)) << " | " << fmt(r.accuracy, 4) << " | "
         << fmt(delta, 2) << " | " << fmt(r.ebops, 0) << " | " << fmt(r.uniform / r.ebops, 1) << " | "
         << fmt(r.nonzero, 0) << " | " << fmt(r.flash, 0) << " | " << fmt(r.seconds, 0) << " |\n";
      each.push_back({r.v.token, {r.nonzero}, {r.accuracy}, true});
    }
    std::string err = r.error;
    for (char& c : err)
      if (c == ',' || c == '"') c = ';';
    csv << r.v.token << ',' << fmt(r.sparsity, 6) << ',' << fmt(r.units, 0) << ',' << fmt(r.kept_units, 0)
        << ',' << fmt(r.accuracy, 6) << ',' << fmt(delta, 4) << ',' << fmt(r.ebops, 1) << ','
        << fmt(r.uniform, 1) << ',' << fmt(r.macs, 0) << ',' << fmt(r.nonzero, 0) << ',' << fmt(r.flash, 0)
        << ',' << fmt(r.seconds, 1) << ',' << err << '\n';
  }
  write_text(rd.path("compare.md"), md.str());
  write_text(rd.path("compare.csv"), csv.str());
  if (!each.empty())
    plot::write_svg(rd.path("compare.svg"),
                    {{"Test accuracy vs nonzero multiplications", "nonzero multiplications (C export)",
                      "test accuracy", each, true}});
  rd.commit();
  std::cout << md.str() << "wrote " << out << "/{compare.md, compare.csv, compare.svg, runs/, logs/}\n";
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  CLI::App app{
      "kiln compare: train one config with several pruning methods and tabulate accuracy against resources"};
  kiln::Flags f;
  app.add_option("--config", f.config, "YAML config (its compression: sections give the methods' settings)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--methods", f.methods,
                 "comma-separated: none, hgq, METHOD[/key=value...][+hgq] (default: none and every method)");
  app.add_option("--out", f.out, "output directory (default runs/compare_<config name>)");
  app.add_option("--jobs", f.jobs, "runs trained at once")->check(CLI::Range(1, 64));
  app.add_option("--threads", f.threads, "OpenMP threads per run")->check(CLI::Range(1, 4096));
  app.add_option("--epochs", f.epochs, "epochs per pruning round (training.epochs) for every run")
      ->check(CLI::Range(1, 1000000));
  app.add_flag("--overwrite", f.overwrite, "replace an earlier compare run in the output directory");
  return kiln::run_tool("kiln compare", app, argc, argv, [&] { return kiln::run(f); });
}
