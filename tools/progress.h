// A one-line progress bar for training loops.
//
//   kiln::ProgressBar bar("epoch 3/20", batches_per_epoch, std::cerr, kiln::stderr_is_tty());
//   for (int64_t b = 0; b < batches_per_epoch; ++b) {
//     ...train one batch...
//     bar.update(b + 1, samples_so_far, {{"loss", running_loss}});
//   }
//   bar.finish({{"loss", epoch_loss}, {"acc", val_acc}});
//
// On a terminal, update() redraws the line in place (carriage return, at most 10 redraws a second, at most
// 100 characters):
//   epoch 3/20 [=========>          ] 45% 120.3k samples/s loss 0.4321 acc 0.8812 ETA 0:12
// and finish() draws it complete with the elapsed time instead of the ETA, then ends the line. Elsewhere
// (a log file, a pipe) update() prints nothing and finish() prints one plain line:
//   epoch 3/20 100% 120.3k samples/s loss 0.4321 acc 0.8812 time 0:27
#pragma once
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

// True when stderr is a terminal (isatty).
bool stderr_is_tty();

// Compact number: 950, 12.5, 1.2k, 120.3k, 3.4M, 5.6G (one decimal once scaled, none for small integers).
std::string compact_number(double v);

// Whole seconds as m:ss, or h:mm:ss from an hour up: 0:07, 12:05, 1:02:03.
std::string format_duration(double seconds);

class ProgressBar {
 public:
  using Stats = std::vector<std::pair<std::string, double>>;  // printed in order as "name value" (%.4g)
  using Clock = std::function<double()>;                      // monotonic seconds; tests pass a fake one

  static constexpr int kMaxWidth = 100;           // characters per line, at most
  static constexpr double kRedrawInterval = 0.1;  // seconds between redraws, at least

  // total_steps >= 1. Time is measured from construction; `clock` defaults to std::chrono::steady_clock.
  ProgressBar(std::string label, int64_t total_steps, std::ostream& out, bool is_tty, Clock clock = {});

  // Records progress: `step` of total_steps done, `samples_done` samples processed since construction
  // (for the samples/s rate). Redraws the line when on a terminal and the last redraw is old enough.
  void update(int64_t step, int64_t samples_done, const Stats& stats = {});

  // Prints the final line, with the step and sample count of the last update(), and ends it with a
  // newline. Later calls to update() or finish() do nothing.
  void finish(const Stats& stats = {});

 private:
  std::string line(bool final_line, const Stats& stats) const;
  void draw(const std::string& text, bool end_line);

  std::string label_;
  int64_t total_;
  std::ostream& out_;
  bool tty_;
  Clock clock_;
  double start_;
  double last_draw_ = -1;  // clock time of the last redraw; < 0 before the first
  int64_t step_ = 0, samples_ = 0;
  size_t last_len_ = 0;  // length of the line currently on screen, to blank out a longer old one
  bool finished_ = false;
};

}  // namespace kiln
