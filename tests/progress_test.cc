// Progress bar: the exact terminal line, in-place redraws throttled to 10 a second, the 100-character
// limit, one plain line when not on a terminal, and compact number and time formats.
#include "tools/progress.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

using namespace kiln;

namespace {

size_t count(const std::string& s, char c) { return static_cast<size_t>(std::count(s.begin(), s.end(), c)); }

// The lines drawn on a terminal: the text after each '\r', without the trailing newline.
std::vector<std::string> redraws(const std::string& s) {
  std::vector<std::string> out;
  for (size_t p = s.find('\r'); p != std::string::npos;) {
    const size_t next = s.find('\r', p + 1);
    std::string seg = s.substr(p + 1, next == std::string::npos ? std::string::npos : next - p - 1);
    if (!seg.empty() && seg.back() == '\n') seg.pop_back();
    out.push_back(seg);
    p = next;
  }
  return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("compact_number and format_duration") {
  CHECK(compact_number(950) == "950");
  CHECK(compact_number(12.5) == "12.5");
  CHECK(compact_number(1234) == "1.2k");
  CHECK(compact_number(120300) == "120.3k");
  CHECK(compact_number(999.96) == "1.0k");
  CHECK(compact_number(3.4e6) == "3.4M");
  CHECK(compact_number(5.6e9) == "5.6G");
  CHECK(format_duration(7) == "0:07");
  CHECK(format_duration(725) == "12:05");
  CHECK(format_duration(3723) == "1:02:03");
}

TEST_CASE("ProgressBar on a terminal: the exact line") {
  double now = 0;
  std::ostringstream out;
  ProgressBar bar("epoch 3/20", 100, out, true, [&] { return now; });
  now = 1.0;
  bar.update(45, 120300, {{"loss", 0.43214}, {"acc", 0.88123}});
  // 30-wide bar, 45% -> 13 cells, the last one the arrow head; ETA = 1 s * 55 / 45.
  CHECK(out.str() ==
        "\repoch 3/20 [============>                 ] 45% 120.3k samples/s loss 0.4321 acc 0.8812 "
        "ETA 0:01");
  now = 2.0;
  bar.update(100, 240600, {{"loss", 0.4}});
  bar.finish({{"loss", 0.4}, {"acc", 0.9}});
  const auto lines = redraws(out.str());
  REQUIRE(lines.size() == 3);
  CHECK(lines[2].rfind(
            "epoch 3/20 [==============================] 100% 120.3k samples/s loss 0.4 acc 0.9 time 0:02",
            0) == 0);
  // The shorter second line is padded with spaces over the end of the first.
  CHECK(lines[1].size() == lines[0].size());
  CHECK(out.str().back() == '\n');
  CHECK(count(out.str(), '\n') == 1);
  bar.update(50, 1, {});  // after finish: ignored
  bar.finish({});
  CHECK(count(out.str(), '\n') == 1);
}

TEST_CASE("ProgressBar on a terminal: at most 10 redraws a second") {
  double now = 0;
  std::ostringstream out;
  ProgressBar bar("train", 1000, out, true, [&] { return now; });
  // Updates every 10 ms for 1 s: redraws at t = 0, 0.1, ..., 0.9 (within rounding) and no more.
  for (int step = 0; step < 100; ++step) {
    now = step * 0.01;
    bar.update(step + 1, (step + 1) * 64, {{"loss", 1.0}});
  }
  const size_t drawn = count(out.str(), '\r');
  CHECK(drawn >= 9);
  CHECK(drawn <= 11);
  CHECK(count(out.str(), '\n') == 0);

  // With the real clock: a tight loop redraws about once per 0.1 s of its duration.
  std::ostringstream real_out;
  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar real("fast", 100000, real_out, true);
  for (int step = 1; step <= 100000; ++step) real.update(step, step, {});
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(count(real_out.str(), '\r') <= static_cast<size_t>(secs / ProgressBar::kRedrawInterval) + 2);
}

TEST_CASE("ProgressBar: lines never exceed 100 characters") {
  double now = 0;
  std::ostringstream out;
  ProgressBar bar("a rather long label for this epoch", 10, out, true, [&] { return now; });
  ProgressBar::Stats many;
  for (int i = 0; i < 12; ++i) many.push_back({"stat" + std::to_string(i), 0.123456 * i});
  now = 0.5;
  bar.update(5, 500, many);
  now = 1.0;
  bar.update(6, 600, {{"loss", 0.5}});
  bar.finish(many);
  const auto lines = redraws(out.str());
  REQUIRE(lines.size() == 3);
  for (const auto& l : lines) CHECK(l.size() <= 100);
  CHECK(lines[0].substr(lines[0].size() - 3) == "...");
  CHECK(contains(lines[1], "["));  // a short line has room for the bar
}

TEST_CASE("ProgressBar off a terminal: nothing until finish, then exactly one plain line") {
  double now = 0;
  std::ostringstream out;
  ProgressBar bar("epoch 3/20", 100, out, false, [&] { return now; });
  for (int step = 1; step <= 100; ++step) {
    now = step * 0.01;
    bar.update(step, step * 32, {{"loss", 0.5}});
  }
  CHECK(out.str().empty());
  bar.finish({{"loss", 0.4321}, {"acc", 0.8812}});
  const std::string s = out.str();
  CHECK(s == "epoch 3/20 100% 3.2k samples/s loss 0.4321 acc 0.8812 time 0:01\n");
  CHECK(count(s, '\r') == 0);
  bar.finish({{"loss", 1.0}});
  CHECK(out.str() == s);
}

TEST_CASE("stderr_is_tty answers without throwing") { CHECK_NOTHROW(stderr_is_tty()); }
