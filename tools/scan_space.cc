#include "tools/scan_space.h"

#include <charconv>
#include <cmath>
#include <sstream>

#include "symreg/rng.h"

namespace kiln::scan {

namespace {

std::string yaml_text(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

Param parse_param(const Config& c, const std::string& path, const YAML::Node& n) {
  Param p;
  p.path = path;
  const std::string where = c.location("parameters") + ": parameter '" + path + "'";
  if (path.empty() || path.front() == '.' || path.back() == '.' || path.find("..") != std::string::npos)
    throw InputError(where + ": a parameter is a dotted path such as training.optimizer.learning_rate");
  if (n.IsSequence()) {
    if (n.size() == 0) throw InputError(where + ": the list of values is empty");
    for (const auto& v : n) p.values.push_back(yaml_text(v));
    return p;
  }
  if (!n.IsMap())
    throw InputError(where +
                     ": give a list of values ([1e-6, 1e-5]) or a range ({min: 1e-6, max: 1e-4, "
                     "scale: log}), got '" +
                     yaml_text(n) + "'");
  Config r(n, c.file(), "parameter '" + path + "'");
  p.lo = r.require<double>("min");
  p.hi = r.require<double>("max");
  const std::string scale = r.get<std::string>("scale", "linear"), type = r.get<std::string>("type", "float");
  r.check_unused({"min", "max", "scale", "type"});
  if (!(p.lo < p.hi) || !std::isfinite(p.lo) || !std::isfinite(p.hi))
    r.fail("min",
           "a range needs finite min < max, got min " + number_text(p.lo) + ", max " + number_text(p.hi));
  if (scale != "linear" && scale != "log") r.fail("scale", "scale is linear or log, got '" + scale + "'");
  if (type != "float" && type != "int") r.fail("type", "type is float or int, got '" + type + "'");
  p.log = scale == "log", p.integer = type == "int";
  if (p.log && p.lo <= 0) r.fail("min", "a log scale needs min > 0, got " + number_text(p.lo));
  if (p.integer && (p.lo != std::floor(p.lo) || p.hi != std::floor(p.hi)))
    r.fail("min", "an int range needs integer min and max");
  return p;
}

}  // namespace

double from_unit(const Param& p, double u) {
  u = std::min(std::max(u, 0.0), 1.0);
  double v =
      p.log ? std::exp(std::log(p.lo) + u * (std::log(p.hi) - std::log(p.lo))) : p.lo + u * (p.hi - p.lo);
  if (p.integer) v = std::round(v);
  return std::min(std::max(v, p.lo), p.hi);
}

double to_unit(const Param& p, double v) {
  if (p.log) return (std::log(v) - std::log(p.lo)) / (std::log(p.hi) - std::log(p.lo));
  return (v - p.lo) / (p.hi - p.lo);
}

std::string number_text(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

int ScanSpec::total_trials() const {
  if (type == "random") return trials;
  if (type == "nsga2") return population * generations;
  int n = 1;
  for (const auto& p : params) n *= static_cast<int>(p.values.size());
  return n;
}

ScanSpec parse_scan(const Config& c) {
  ScanSpec s;
  s.file = c.file();
  s.base = c.require<std::string>("base");
  s.threads = c.get<int>("threads_per_trial", 1);
  if (s.threads < 1 || s.threads > 4096)
    c.fail("threads_per_trial", "threads_per_trial must be 1 to 4096, got " + std::to_string(s.threads));
  s.keep = c.get<std::string>("keep", "front");
  if (s.keep != "front" && s.keep != "all") c.fail("keep", "keep is front or all, got '" + s.keep + "'");
  Config search = c.child("search", true);
  s.type = search.require<std::string>("type");
  s.seed = search.get<uint64_t>("seed", 1);
  if (s.type == "grid") {
    search.check_unused({"type", "seed"});
  } else if (s.type == "random") {
    s.trials = search.require<int>("trials");
    if (s.trials < 1 || s.trials > 1000000)
      search.fail("trials", "trials must be 1 to 1,000,000, got " + std::to_string(s.trials));
    search.check_unused({"type", "seed", "trials"});
  } else if (s.type == "nsga2") {
    s.population = search.require<int>("population");
    s.generations = search.require<int>("generations");
    if (s.population < 2 || s.population > 100000)
      search.fail("population", "population must be 2 to 100,000, got " + std::to_string(s.population));
    if (s.generations < 1 || s.generations > 10000)
      search.fail("generations", "generations must be 1 to 10,000, got " + std::to_string(s.generations));
    search.check_unused({"type", "seed", "population", "generations"});
  } else {
    search.fail("type", "search type is grid, random or nsga2, got '" + s.type + "'");
  }
  YAML::Node params = c.raw("parameters");
  if (!params || !params.IsMap() || params.size() == 0)
    throw InputError(c.location(c.has("parameters") ? "parameters" : "") +
                     ": 'parameters' must map at least one dotted config path to values");
  for (const auto& kv : params) s.params.push_back(parse_param(c, kv.first.as<std::string>(), kv.second));
  for (const auto& p : s.params)
    if (s.type == "grid" && p.is_range())
      throw InputError(
          c.location("parameters") + ": parameter '" + p.path +
          "' is a range; a grid scan needs a list of values (or use search: type: random / nsga2)");
  if (s.type == "grid" && s.total_trials() > 1000000)
    throw InputError(c.location("parameters") + ": the grid has more than 1,000,000 points");
  for (const Config& o : c.children("objectives")) {
    Objective ob;
    ob.metric = o.require<std::string>("metric");
    const std::string goal = o.require<std::string>("goal");
    if (goal != "max" && goal != "min") o.fail("goal", "goal is max or min, got '" + goal + "'");
    ob.maximize = goal == "max";
    o.check_unused({"metric", "goal"});
    s.objectives.push_back(ob);
  }
  if (s.objectives.empty()) {
    if (s.type == "nsga2") throw InputError(c.location() + ": search type nsga2 needs 'objectives'");
    s.objectives.push_back({"final_val_accuracy", true});
  }
  c.check_unused({"base", "output_dir", "threads_per_trial", "keep", "search", "parameters", "objectives"});
  return s;
}

std::vector<Trial> initial_trials(const ScanSpec& s) {
  std::vector<Trial> out;
  const size_t np = s.params.size();
  if (s.type == "grid") {
    const int n = s.total_trials();
    for (int id = 0; id < n; ++id) {
      Trial t;
      t.id = id;
      int rest = id;  // the last param varies fastest
      t.genes.assign(np, 0);
      for (size_t k = np; k-- > 0;) {
        const int m = static_cast<int>(s.params[k].values.size());
        t.genes[k] = rest % m;
        rest /= m;
      }
      out.push_back(t);
    }
  } else {
    const int n = s.type == "random" ? s.trials : s.population;
    for (int id = 0; id < n; ++id) {
      Trial t;
      t.id = id;
      // The project's generator (symreg/rng.h): one stream per trial, so trial id's values do not depend
      // on how many trials come before it.
      symreg::Rng rng = symreg::Rng::derive(s.seed, {kStreamRandom, static_cast<uint64_t>(id)});
      for (const auto& p : s.params) {
        const double u = rng.uniform();
        t.genes.push_back(p.is_range() ? from_unit(p, u)
                                       : std::floor(u * static_cast<double>(p.values.size())));
      }
      out.push_back(t);
    }
  }
  for (auto& t : out) set_values(s, &t);
  return out;
}

void set_values(const ScanSpec& s, Trial* t) {
  t->values.clear();
  for (size_t k = 0; k < s.params.size(); ++k) {
    const Param& p = s.params[k];
    t->values.push_back(p.is_range() ? number_text(t->genes[k]) : p.values[static_cast<size_t>(t->genes[k])]);
  }
}

YAML::Node trial_config(const YAML::Node& base, const ScanSpec& s, const Trial& t) {
  YAML::Node c = YAML::Clone(base);
  c.remove("output_dir");
  for (size_t k = 0; k < s.params.size(); ++k) {
    const std::string& path = s.params[k].path;
    std::vector<std::string> parts;
    std::stringstream ss(path);
    for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
    // yaml-cpp nodes are handles: walking with assignment would rebind them, so keep a chain of handles.
    std::vector<YAML::Node> chain{c};
    for (size_t i = 0; i < parts.size(); ++i) {
      YAML::Node cur = chain.back();
      const bool last = i + 1 == parts.size();
      const std::string here = s.file + ": parameter '" + path + "': at '" + parts[i] + "'";
      if (cur.IsSequence()) {
        size_t idx = 0;
        try {
          idx = std::stoul(parts[i]);
        } catch (const std::exception&) {
          throw InputError(here + ": " + s.base + " has a list there; give an index (0, 1, ...)");
        }
        if (idx >= cur.size())
          throw InputError(here + ": index " + parts[i] + " is past the end of the list in " + s.base + " (" +
                           std::to_string(cur.size()) + " items)");
        if (last)
          cur[idx] = YAML::Load(t.values[k]);
        else
          chain.push_back(cur[idx]);
      } else if (cur.IsMap() || cur.IsNull() || !cur.IsDefined()) {
        if (last)
          cur[parts[i]] = YAML::Load(t.values[k]);
        else
          chain.push_back(cur[parts[i]]);
      } else {
        throw InputError(here + ": " + s.base + " has the value '" + yaml_text(cur) +
                         "' above it, not a mapping");
      }
    }
  }
  return c;
}

}  // namespace kiln::scan
