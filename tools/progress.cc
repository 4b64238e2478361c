#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "engine/check.h"

namespace kiln {

bool stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }

std::string compact_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  static const char* const kSuffix[] = {"", "k", "M", "G", "T"};
  size_t k = 0;
  // 999.95 would print as "1000.0" at one decimal: move to the next suffix first.
  while (std::fabs(v) >= 999.95 && k + 1 < sizeof kSuffix / sizeof kSuffix[0]) {
    v /= 1000;
    ++k;
  }
  char buf[48];
  if (k == 0 && v == std::round(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f%s", v, kSuffix[k]);
  }
  return buf;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-:--";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  char buf[48];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total_steps, std::ostream& out, bool is_tty, Clock clock)
    : label_(std::move(label)), total_(total_steps), out_(out), tty_(is_tty), clock_(std::move(clock)) {
  KILN_CHECK(total_ >= 1, "ProgressBar needs total_steps >= 1, got " + std::to_string(total_steps));
  if (!clock_) {
    clock_ = [] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    };
  }
  start_ = clock_();
}

std::string ProgressBar::line(bool final_line, const Stats& stats) const {
  const double elapsed = clock_() - start_;
  const int64_t step = std::clamp<int64_t>(step_, 0, total_);
  const double frac = static_cast<double>(step) / static_cast<double>(total_);
  // Everything after the bar.
  std::string rest = std::to_string(static_cast<int>(std::floor(100 * frac))) + "%";
  if (elapsed > 0 && samples_ > 0) {
    rest += " " + compact_number(static_cast<double>(samples_) / elapsed) + " samples/s";
  }
  for (const auto& [name, value] : stats) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.4g", value);
    rest += " " + name + " " + buf;
  }
  if (final_line) {
    rest += " time " + format_duration(elapsed);
  } else if (step > 0 && elapsed > 0) {
    rest +=
        " ETA " + format_duration(elapsed * static_cast<double>(total_ - step) / static_cast<double>(step));
  }
  std::string text = label_;
  // The bar, on a terminal only, squeezed so that the line fits; dropped when under 5 characters.
  const int bar_width =
      std::min<int>(30, kMaxWidth - static_cast<int>(label_.size() + rest.size()) - 4);  // " [" "] "
  if (tty_ && bar_width >= 5) {
    const int filled = static_cast<int>(std::floor(frac * bar_width));
    std::string bar(static_cast<size_t>(bar_width), ' ');
    for (int i = 0; i < filled; ++i) bar[static_cast<size_t>(i)] = '=';
    if (filled > 0 && filled < bar_width) bar[static_cast<size_t>(filled - 1)] = '>';
    text += " [" + bar + "]";
  }
  text += " " + rest;
  if (text.size() > static_cast<size_t>(kMaxWidth)) text = text.substr(0, kMaxWidth - 3) + "...";
  return text;
}

void ProgressBar::draw(const std::string& text, bool end_line) {
  std::string s = text;
  if (tty_) {
    // Blank out the tail of a longer line drawn before.
    if (s.size() < last_len_) s.append(last_len_ - s.size(), ' ');
    out_ << '\r' << s;
  } else {
    out_ << s;
  }
  last_len_ = text.size();
  if (end_line) out_ << '\n';
  out_.flush();
}

void ProgressBar::update(int64_t step, int64_t samples_done, const Stats& stats) {
  if (finished_) return;
  step_ = step;
  samples_ = samples_done;
  if (!tty_) return;
  const double now = clock_();
  if (last_draw_ >= 0 && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  draw(line(false, stats), false);
}

void ProgressBar::finish(const Stats& stats) {
  if (finished_) return;
  finished_ = true;
  draw(line(true, stats), true);
}

}  // namespace kiln
