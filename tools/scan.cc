// kiln scan: many training runs of one config over a search space, on one machine or across MPI ranks.
//
//   bazel run //tools:scan -- --config data/scan_digits_beta.yaml            # one process
//   mpirun -np 64 bazel-bin/tools/scan --config data/scan_digits_beta.yaml    # or srun under Slurm
//
// Rank 0 proposes trials (scan_space.h), hands them to whichever rank asks (itself included) and records
// each result as it arrives: a line in DIR.partial/trials.jsonl (the journal) and the tables scan.csv,
// front.csv, front.svg. Every rank runs its trials as //tools:train child processes, `--jobs` at a time,
// in the shared scan directory. A failed trial is recorded with its error and the scan goes on. Rerunning
// the same command after a kill (of any rank or of the whole job) keeps the journal and runs only the
// trials not in it; when every trial is done DIR.partial becomes DIR. Messages are small JSON strings:
// a trial order (its config, ~1-2 KB) and a result (~0.5 KB); see README "Scans" for the scaling figures.
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "dist/comm.h"
#include "tools/run_dir.h"
#include "tools/scan_report.h"
#include "tools/scan_trial.h"
#include "tools/tool_main.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
using scan::Result;

enum Tag { kReady = 1, kResult = 2, kTrial = 3, kWait = 4, kStop = 5, kBye = 6 };

struct Flags {
  std::string config, out;
  int jobs = 1;
  bool overwrite = false, retry_failed = false;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string train_binary() {
  const char* env = std::getenv("KILN_TRAIN");
  const std::string t =
      env && *env ? std::string(env) : (fs::canonical("/proc/self/exe").parent_path() / "train").string();
  if (!fs::exists(t)) throw InputError("kiln scan: the train binary is not at " + t + " (set KILN_TRAIN)");
  return t;
}

void nap() { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }

// ---- rank 0 ---------------------------------------------------------------------------------------------

class Scheduler {
 public:
  Scheduler(const Flags& f, dist::Comm& comm) : f_(f), comm_(comm) {}

  // Checks everything and prepares DIR.partial; returns false when the scan is complete already.
  bool setup() {
    const std::string text = read_all(f_.config);
    Config c = Config::load_file(f_.config, "base:, search:, parameters:");
    spec_ = scan::parse_scan(c);
    if (!fs::exists(spec_.base))
      throw InputError(c.location("base") + ": base config '" + spec_.base + "' does not exist");
    const std::string base_text = read_all(spec_.base);
    try {
      base_ = YAML::Load(base_text);
    } catch (const YAML::Exception& e) {
      throw InputError(spec_.base + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!base_.IsMap()) throw InputError(spec_.base + ": a training config is a mapping");
    // Every proposal must make a config, and the train command must be there: a bad path fails now, before
    // any directory is made, not in every trial.
    for (const auto& t : scan::initial_trials(spec_)) scan::trial_config(base_, spec_, t);
    train_ = train_binary();
    out_ = !f_.out.empty()
               ? f_.out
               : c.get<std::string>("output_dir", "runs/scan_" + fs::path(f_.config).stem().string());
    // A complete scan of the same config and base: nothing to run.
    if (run_command_at(out_) == "kiln scan" && !f_.overwrite && read_all(out_ + "/scan.yaml") == text &&
        read_all(out_ + "/base.yaml") == base_text) {
      std::cout << "kiln scan: " << out_
                << " holds this scan complete; nothing to do (--overwrite runs it again)\n";
      return false;
    }
    rd_ = std::make_unique<RunDir>(out_, "kiln scan", f_.overwrite, /*keep_unfinished=*/!f_.overwrite);
    dir_ = rd_->staging();
    if (rd_->resumed() &&
        (read_all(rd_->path("scan.yaml")) != text || read_all(rd_->path("base.yaml")) != base_text))
      throw InputError("'" + dir_ + "' holds an unfinished scan of a different scan config or base config; " +
                       "pass --overwrite to discard it and start again, or choose another --out");
    for (const char* d : {"configs", "logs", "trials"}) fs::create_directories(rd_->path(d));
    write_text(rd_->path("scan.yaml"), text);
    write_text(rd_->path("base.yaml"), base_text);
    for (Result& r : scan::read_journal(rd_->path("trials.jsonl")))
      if (r.ok || !f_.retry_failed) done_[r.trial.id] = r;
    return true;
  }

  const std::string& dir() const { return dir_; }
  const std::string& train() const { return train_; }
  int threads() const { return spec_.threads; }

  int run() {
    const auto t0 = clock_type::now();
    generation_ = 0;
    propose(scan::initial_trials(spec_));
    const int total = spec_.total_trials();
    std::cerr << "kiln scan: " << total << " trials (" << spec_.type << "), " << comm_.size() << " rank"
              << (comm_.size() > 1 ? "s" : "") << " x " << f_.jobs << " job" << (f_.jobs > 1 ? "s" : "")
              << " (" << comm_.backend() << "); " << done_.size() << " done earlier; writing " << dir_
              << "\n";
    scan::TrialRunner local(dir_, train_, spec_.threads, 0);
    std::set<int> finished_ranks;
    const int workers = comm_.size() - 1;
    while (true) {
      bool busy = false;
      if (queue_.empty() && running_.empty() && spec_.type == "nsga2" &&
          generation_ + 1 < spec_.generations) {
        ++generation_;
        propose(scan::nsga2_generation(spec_, generation_, results()));
        continue;
      }
      const bool all_done = queue_.empty() && running_.empty() && !more_generations();
      while (!queue_.empty() && static_cast<int>(local.running()) < f_.jobs) local.launch(take_next());
      for (Result& r : local.poll()) record(std::move(r)), busy = true;
      int from = 0, tag = 0;
      while (comm_.probe(dist::kAnySource, dist::kAnyTag, &from, &tag)) {
        busy = true;
        const std::string m = comm_.recv(from, tag);
        if (tag == kResult) {
          result_bytes_ += static_cast<double>(m.size());
          record(scan::result_from_json(m));
        } else if (tag == kBye) {
          finished_ranks.insert(from);
        } else if (tag == kReady) {
          if (!queue_.empty()) {
            const auto w0 = clock_type::now();
            const std::string o = scan::order_to_json(take_next());
            comm_.send(from, kTrial, o);
            order_bytes_ += static_cast<double>(o.size()), ++orders_;
            work_ += clock_type::now() - w0;
          } else {
            const bool finished = running_.empty() && !more_generations();
            comm_.send(from, finished || all_done ? kStop : kWait, "");
          }
        }
      }
      if (all_done && static_cast<int>(finished_ranks.size()) == workers) break;
      if (!busy) nap();
    }
    finish();
    const double wall = std::chrono::duration<double>(clock_type::now() - t0).count();
    int failed = 0;
    for (const auto& [id, r] : done_) failed += !r.ok;
    std::cout << "kiln scan: " << done_.size() << " trials, " << failed << " failed, front of " << front_size_
              << "; wall time " << std::fixed << std::setprecision(1) << wall << " s on " << comm_.size()
              << " rank" << (comm_.size() > 1 ? "s" : "") << "\n";
    // What limits the number of ranks one scheduler can serve (README "Scans": scaling).
    if (recorded_ > 0)
      std::cout << "rank 0 scheduling: " << std::setprecision(3)
                << 1e3 * std::chrono::duration<double>(work_).count() / static_cast<double>(recorded_)
                << " ms per trial (proposal, order, journal append + fsync, progress, tables)";
    if (orders_ > 0)
      std::cout << "; messages: order " << std::setprecision(0) << order_bytes_ / orders_ << " B, result "
                << result_bytes_ / orders_ << " B per trial";
    std::cout << "\nwrote " << out_ << "/{scan.csv, front.csv, front.svg, trials/, logs/, configs/}\n";
    return done_.empty() || failed == static_cast<int>(done_.size()) ? 1 : 0;
  }

 private:
  bool more_generations() const { return spec_.type == "nsga2" && generation_ + 1 < spec_.generations; }

  std::vector<Result> results() const {
    std::vector<Result> v;
    for (const auto& [id, r] : done_) v.push_back(r);
    return v;
  }

  void propose(const std::vector<scan::Trial>& ts) {
    for (const auto& t : ts) {
      proposed_[t.id] = t;
      if (done_.count(t.id)) {
        // A journal entry of an earlier run: its values must be what this config proposes now.
        if (done_[t.id].trial.values != t.values)
          throw InputError(dir_ + "/trials.jsonl: trial " + scan::trial_name(t.id) +
                           " was run with other values than this scan proposes; pass --overwrite");
      } else {
        queue_.push_back(t);
      }
    }
  }

  // The next queued trial's order, the trial now counted as running.
  scan::TrialOrder take_next() {
    const scan::TrialOrder o = order(queue_.front());
    running_.insert(queue_.front().id);
    queue_.pop_front();
    return o;
  }

  scan::TrialOrder order(const scan::Trial& t) const {
    YAML::Emitter e;
    e << scan::trial_config(base_, spec_, t);
    return {t.id, std::string("# kiln scan trial ") + scan::trial_name(t.id) + " of " + f_.config + "\n" +
                      e.c_str() + "\n"};
  }

  void record(Result r) {
    const auto w0 = clock_type::now();
    running_.erase(r.trial.id);
    const scan::Trial& t = proposed_.at(r.trial.id);
    r.trial.generation = t.generation, r.trial.genes = t.genes, r.trial.values = t.values;
    scan::append_journal(dir_ + "/trials.jsonl", r);
    done_[r.trial.id] = r;
    int failed = 0;
    for (const auto& [id, d] : done_) failed += !d.ok;
    const auto now = clock_type::now();
    if (now - last_tables_ > std::chrono::seconds(1)) write_tables(), last_tables_ = now;
    std::cerr << "[" << done_.size() << "/" << spec_.total_trials() << "] " << scan::trial_name(r.trial.id)
              << (r.ok ? " ok " : " FAILED ") << std::fixed << std::setprecision(1) << r.seconds
              << " s (rank " << r.rank << "): " << (r.ok ? scan::objectives_text(spec_, r) : r.error)
              << " | running " << running_.size() << ", failed " << failed << ", front " << front_size_
              << "\n";
    work_ += clock_type::now() - w0, ++recorded_;
  }

  // The tables and the front's trial ids (front_size_ for the progress lines).
  std::set<int> write_tables() {
    const std::vector<int> ids = scan::write_tables(dir_, spec_, results());
    front_size_ = ids.size();
    return {ids.begin(), ids.end()};
  }

  void finish() {
    const std::set<int> front = write_tables();
    if (spec_.keep == "front")
      for (const auto& [id, r] : done_)
        if (r.ok && !front.count(id)) {
          const fs::path run = fs::path(dir_) / "trials" / scan::trial_name(id);
          std::error_code ec;
          fs::remove(run / "model.ckpt", ec);
          fs::remove_all(run / "pareto", ec);
        }
    std::cout << read_all(dir_ + "/front.csv");
    rd_->commit();
  }

  Flags f_;
  dist::Comm& comm_;
  scan::ScanSpec spec_;
  YAML::Node base_;
  std::string out_, dir_, train_;
  std::unique_ptr<RunDir> rd_;
  std::map<int, Result> done_;
  std::map<int, scan::Trial> proposed_;
  std::deque<scan::Trial> queue_;
  std::set<int> running_;
  int generation_ = 0;
  size_t front_size_ = 0;
  clock_type::time_point last_tables_{};
  clock_type::duration work_{};  // rank 0's scheduling work, for the scaling figures
  int recorded_ = 0, orders_ = 0;
  double order_bytes_ = 0, result_bytes_ = 0;
};

// ---- ranks 1.. ------------------------------------------------------------------------------------------

int work(const Flags& f, dist::Comm& comm, const std::string& dir, const std::string& train, int threads) {
  scan::TrialRunner runner(dir, train, threads, comm.rank());
  int outstanding = 0;  // READY sent, no answer yet
  bool stop = false;
  auto retry_at = clock_type::now();
  while (!(stop && outstanding == 0 && runner.running() == 0)) {
    bool busy = false;
    if (!stop && static_cast<int>(runner.running()) + outstanding < f.jobs && clock_type::now() >= retry_at) {
      comm.send(0, kReady, "");
      ++outstanding;
    }
    int tag = 0;
    while (comm.probe(0, dist::kAnyTag, nullptr, &tag)) {
      busy = true;
      const std::string m = comm.recv(0, tag);
      --outstanding;
      if (tag == kTrial) runner.launch(scan::order_from_json(m));
      if (tag == kWait) retry_at = clock_type::now() + std::chrono::milliseconds(100);
      if (tag == kStop) stop = true;
    }
    for (const Result& r : runner.poll()) comm.send(0, kResult, scan::result_to_json(r)), busy = true;
    if (!busy) nap();
  }
  comm.send(0, kBye, "");
  return 0;
}

int run(const Flags& f, dist::Comm& comm) {
  if (comm.rank() == 0) {
    Scheduler s(f, comm);
    json setup;
    bool go = false;
    try {
      go = s.setup();
      setup =
          go ? json{{"dir", s.dir()}, {"train", s.train()}, {"threads", s.threads()}} : json{{"done", true}};
    } catch (const std::exception& e) {
      comm.broadcast(json{{"error", e.what()}}.dump(), 0);
      throw;
    }
    comm.broadcast(setup.dump(), 0);
    if (!go) return 0;
    try {
      return s.run();
    } catch (const std::exception& e) {
      // The other ranks wait for rank 0: end them all, with the one-line message first.
      std::cerr << "kiln scan: error: " << one_line(e.what()) << "\n";
      if (comm.distributed()) comm.abort(1);
      throw;
    }
  }
  const json setup = json::parse(comm.broadcast("", 0));
  if (setup.contains("error")) return 1;  // rank 0 printed it
  if (setup.contains("done")) return 0;
  try {
    return work(f, comm, setup["dir"], setup["train"], setup["threads"]);
  } catch (const std::exception& e) {
    // Rank 0 would wait for this rank's results: say why once, then end every rank.
    std::cerr.clear();
    std::cerr << "kiln scan: error: rank " << comm.rank() << ": " << one_line(e.what()) << "\n";
    comm.abort(1);
  }
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  // MPI_Init when launched by mpirun or srun; else one rank.
  kiln::dist::Comm* comm_ptr = kiln::dist::world_or_report(&argc, &argv, "kiln scan");
  if (!comm_ptr) return 1;
  kiln::dist::Comm& comm = *comm_ptr;
  CLI::App app{
      "kiln scan: train one config over a search space (grid, random, NSGA-II), in one process or "
      "across MPI ranks (mpirun -np N), and write the combined accuracy-vs-resources front"};
  kiln::Flags f;
  app.add_option("--config", f.config, "scan config (YAML): base, search, parameters, objectives")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--out", f.out, "scan directory (default: the config's output_dir or runs/scan_<name>)");
  app.add_option("--jobs", f.jobs, "trials each rank runs at once (default 1)")->check(CLI::Range(1, 256));
  app.add_flag("--overwrite", f.overwrite,
               "start again: discard an unfinished scan in DIR.partial, replace a complete one when done");
  app.add_flag("--retry-failed", f.retry_failed, "run the failed trials of an unfinished scan again");
  // Ranks other than 0 stay quiet: rank 0 prints every message once.
  if (comm.rank() > 0) std::cerr.setstate(std::ios::failbit);
  return kiln::run_tool("kiln scan", app, argc, argv, [&] { return kiln::run(f, comm); });
}
