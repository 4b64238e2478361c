#include "tools/scan_trial.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/check.h"
#include "tools/run_dir.h"
#include "tools/spawn.h"

namespace kiln::scan {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string trial_name(int id) {
  char b[32];
  std::snprintf(b, sizeof b, "t%04d", id);
  return b;
}

TrialRunner::TrialRunner(std::string dir, std::string train, int threads, int rank)
    : dir_(std::move(dir)), train_(std::move(train)), threads_(threads), rank_(rank) {}

void TrialRunner::launch(const TrialOrder& t) {
  const std::string name = trial_name(t.id);
  const std::string cfg = dir_ + "/configs/" + name + ".yaml", log = dir_ + "/logs/" + name + ".log";
  write_text(cfg, t.config_yaml);
  std::vector<std::string> args{train_,
                                "--config",
                                cfg,
                                "--out",
                                dir_ + "/trials/" + name,
                                "--overwrite",
                                "--quiet",
                                "--threads",
                                std::to_string(threads_)};
  const pid_t pid = spawn_logged(args, log);
  running_[pid] = {t.id, std::chrono::steady_clock::now()};
}

namespace {

// Numbers at the top level of a JSON file; an unreadable file gives an error string.
std::string read_numbers(const std::string& path, const std::string& prefix_key,
                         std::map<std::string, double>* out) {
  std::ifstream in(path);
  if (!in) return "cannot open " + path;
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return path + " is not a JSON object";
  const json& src = prefix_key.empty() ? j : (j.contains(prefix_key) ? j[prefix_key] : json::object());
  for (auto it = src.begin(); it != src.end(); ++it)
    if (it->is_number()) (*out)[it.key()] = it->get<double>();
  return "";
}

}  // namespace

std::vector<Result> TrialRunner::poll() {
  std::vector<Result> out;
  for (;;) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    auto it = running_.find(pid);
    if (it == running_.end()) continue;
    Result r;
    r.trial.id = it->second.id;
    r.rank = rank_;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.start).count();
    running_.erase(it);
    const std::string name = trial_name(r.trial.id), run = dir_ + "/trials/" + name;
    if (WIFSIGNALED(status)) {
      r.error = "killed by signal " + std::to_string(WTERMSIG(status));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      r.error = last_line(dir_ + "/logs/" + name + ".log");
      if (r.error.empty()) r.error = "train exited with status " + std::to_string(WEXITSTATUS(status));
    } else {
      r.error = read_numbers(run + "/metrics.json", "", &r.metrics);
      // The export's resources (a config with an `export:` section): the first resources.json one level down.
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(run, ec))
        if (e.is_directory() && fs::exists(e.path() / "resources.json")) {
          const std::string res = (e.path() / "resources.json").string();
          std::map<std::string, double> total;
          read_numbers(res, "total", &total);
          read_numbers(res, "", &r.metrics);
          for (const char* k : {"multiplications", "nonzero_multiplications"})
            if (total.count(k)) r.metrics[k] = total[k];
          break;
        }
      r.ok = r.error.empty();
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string order_to_json(const TrialOrder& t) {
  return json{{"id", t.id}, {"config", t.config_yaml}}.dump();
}

TrialOrder order_from_json(const std::string& s) {
  json j = json::parse(s);
  return {j.at("id").get<int>(), j.at("config").get<std::string>()};
}

std::string result_to_json(const Result& r) {
  json m = json::object();
  for (const auto& [k, v] : r.metrics) m[k] = v;
  return json{{"id", r.trial.id},
              {"generation", r.trial.generation},
              {"ok", r.ok},
              {"error", r.error},
              {"seconds", r.seconds},
              {"rank", r.rank},
              {"metrics", m},
              {"genes", r.trial.genes},
              {"values", r.trial.values}}
      .dump();
}

Result result_from_json(const std::string& s) {
  json j = json::parse(s);
  Result r;
  r.trial.id = j.at("id").get<int>();
  r.trial.generation = j.value("generation", 0);
  r.ok = j.at("ok").get<bool>();
  r.error = j.value("error", "");
  r.seconds = j.value("seconds", 0.0);
  r.rank = j.value("rank", 0);
  for (auto it = j.at("metrics").begin(); it != j.at("metrics").end(); ++it)
    r.metrics[it.key()] = it->get<double>();
  if (j.contains("genes")) r.trial.genes = j["genes"].get<std::vector<double>>();
  if (j.contains("values")) r.trial.values = j["values"].get<std::vector<std::string>>();
  return r;
}

}  // namespace kiln::scan
