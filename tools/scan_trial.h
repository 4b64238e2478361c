// Runs a scan's trials as child processes of a rank (//tools:train, one run directory each) and collects
// their results. A trial's log is DIR/logs/tNNNN.log, its config DIR/configs/tNNNN.yaml and its run
// DIR/trials/tNNNN. A child dies with its rank (PR_SET_PDEATHSIG): a killed rank leaves no training running.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tools/scan_space.h"

namespace kiln::scan {

// What a rank needs to start a trial: sent by rank 0 as JSON (to_json / trial_from_json).
struct TrialOrder {
  int id = 0;
  std::string config_yaml;  // the whole training config
};

std::string trial_name(int id);  // "t0007"

class TrialRunner {
 public:
  // dir: the scan's directory (staging); train: the train binary; threads: OpenMP threads per trial.
  TrialRunner(std::string dir, std::string train, int threads, int rank);
  void launch(const TrialOrder& t);
  size_t running() const { return running_.size(); }
  // Results of the trials that ended since the last call (without blocking); metrics from metrics.json
  // and the export's resources.json (multiplications, nonzero_multiplications, flash_bytes).
  std::vector<Result> poll();

 private:
  struct Child {
    int id;
    std::chrono::steady_clock::time_point start;
  };
  std::string dir_, train_;
  int threads_, rank_;
  std::map<pid_t, Child> running_;
};

// Messages between ranks.
std::string order_to_json(const TrialOrder& t);
TrialOrder order_from_json(const std::string& s);
std::string result_to_json(const Result& r);  // the trial's id and generation; values/genes are rank 0's
Result result_from_json(const std::string& s);

}  // namespace kiln::scan
