// SVG charts: nice tick values, tick labels, well-formed markup (balanced tags, escaped text), one polyline
// vertex per finite point, degenerate data (one point, a constant, nothing) and writing files.
#include "tools/plot.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "engine/check.h"

using namespace kiln::plot;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

void check_ticks(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-9));
}

size_t count(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}

// A small XML check: every tag closes in order, no stray '<', every '&' starts one of the five entities.
// Returns "" when well formed, else what went wrong.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> open;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      static const std::regex entity("^&(amp|lt|gt|quot|apos);");
      if (!std::regex_search(s.substr(i, 8), entity)) return "bare & at " + std::to_string(i);
    }
    if (s[i] != '<') continue;
    const size_t end = s.find('>', i);
    if (end == std::string::npos) return "unclosed tag at " + std::to_string(i);
    const std::string tag = s.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos) return "'<' inside tag at " + std::to_string(i);
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "mismatched </" + tag.substr(1) + ">";
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find(' ')));
    }
    i = end;
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

// Vertex counts of the polylines, in order.
std::vector<size_t> polyline_sizes(const std::string& svg) {
  std::vector<size_t> sizes;
  static const std::regex re("<polyline[^>]*points=\"([^\"]*)\"");
  for (std::sregex_iterator it(svg.begin(), svg.end(), re), e; it != e; ++it) {
    std::istringstream pts((*it)[1].str());
    std::string pair;
    size_t n = 0;
    while (pts >> pair) {
      CHECK(std::regex_match(pair, std::regex("-?[0-9]+\\.[0-9],-?[0-9]+\\.[0-9]")));
      ++n;
    }
    sizes.push_back(n);
  }
  return sizes;
}

Chart example_chart() {
  Chart c;
  c.title = "Loss & <accuracy>";
  c.x_label = "epoch";
  c.y_label = "value";
  c.series.push_back({"train \"a<b\"", {0, 1, 2, 3, 4}, {0.2, kNaN, 1.1, kInf, 1.9}});
  c.series.push_back({"val", {0.5, 3.5}, {0.4, 0.6}, true});
  return c;
}

}  // namespace

TEST_CASE("nice_ticks: steps of 1, 2 or 5 x 10^k covering the range") {
  check_ticks(nice_ticks(0, 0.93), {0, 0.2, 0.4, 0.6, 0.8, 1.0});
  check_ticks(nice_ticks(0, 2), {0, 0.5, 1, 1.5, 2});
  check_ticks(nice_ticks(0.5, 0.9), {0.5, 0.6, 0.7, 0.8, 0.9});
  check_ticks(nice_ticks(1, 20), {0, 5, 10, 15, 20});
  check_ticks(nice_ticks(-7, 123), {-20, 0, 20, 40, 60, 80, 100, 120, 140});
  check_ticks(nice_ticks(0.93, 0), {0, 0.2, 0.4, 0.6, 0.8, 1.0});  // reversed bounds
  // Zero-width ranges are widened instead of dividing by zero.
  check_ticks(nice_ticks(0, 0), {-1, -0.5, 0, 0.5, 1});
  check_ticks(nice_ticks(3, 3), {2.7, 2.8, 2.9, 3.0, 3.1, 3.2, 3.3});
}

TEST_CASE("nice_log_ticks: decades, with 2 and 5 inside a single decade") {
  check_ticks(nice_log_ticks(1e3, 1e5), {1e3, 1e4, 1e5});
  check_ticks(nice_log_ticks(1.5e3, 7e4), {1e3, 1e4, 1e5});
  check_ticks(nice_log_ticks(2e3, 8e3), {1e3, 2e3, 5e3, 1e4});
  check_ticks(nice_log_ticks(1e3, 1e3), {1e2, 1e3, 1e4});
  check_ticks(nice_log_ticks(1e-6, 1e6), {1e-6, 1e-4, 1e-2, 1, 1e2, 1e4, 1e6});  // every second decade
}

TEST_CASE("format_tick and xml_escape") {
  CHECK(format_tick(0.5, 0.5) == "0.5");
  CHECK(format_tick(1.0, 0.2) == "1.0");
  CHECK(format_tick(3 * 0.2, 0.2) == "0.6");
  CHECK(format_tick(-1e-17, 0.5) == "0.0");
  CHECK(format_tick(250, 50) == "250");
  CHECK(format_tick(0.05, 0.05) == "0.05");
  CHECK(format_tick(2e6, 1e6) == "2e6");
  CHECK(format_tick(2.5e-5, 5e-6) == "2.5e-5");
  CHECK(xml_escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
}

TEST_CASE("render_svg: well formed, escaped, one vertex per finite point") {
  const std::string svg = render_svg(example_chart());
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"400\"", 0) == 0);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  CHECK(xml_problem(svg) == "");
  CHECK(count(svg, "<g") == count(svg, "</g>"));
  CHECK(svg.find("Loss &amp; &lt;accuracy&gt;") != std::string::npos);
  CHECK(svg.find("train &quot;a&lt;b&quot;") != std::string::npos);
  CHECK(svg.find(">val</text>") != std::string::npos);
  // y data spans [0.2, 1.9]: ticks every 0.5 from 0 to 2; x spans [0, 4]: ticks every 1.
  for (const char* label : {">0.0<", ">0.5<", ">1.0<", ">1.5<", ">2.0<", ">0<", ">4<"}) {
    CHECK_MESSAGE(svg.find(label) != std::string::npos, label);
  }
  CHECK(polyline_sizes(svg) == std::vector<size_t>{3, 2});  // NaN and inf points skipped
  CHECK(count(svg, "<circle") == 2);                        // markers on "val" only
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  // The two series get different colours.
  std::smatch m1, m2;
  REQUIRE(std::regex_search(svg, m1, std::regex("<polyline[^>]*stroke=\"(#[0-9A-F]{6})\"")));
  const std::string rest = m1.suffix();
  REQUIRE(std::regex_search(rest, m2, std::regex("<polyline[^>]*stroke=\"(#[0-9A-F]{6})\"")));
  CHECK(m1[1].str() != m2[1].str());
}

TEST_CASE("render_svg: a single point, a constant series and no data") {
  Chart one{"one", "x", "y", {{"p", {2}, {7}}}};
  std::string svg = render_svg(one);
  CHECK(xml_problem(svg) == "");
  CHECK(polyline_sizes(svg) == std::vector<size_t>{1});
  CHECK(count(svg, "<circle") == 1);  // a lone point is always marked
  CHECK(svg.find("nan") == std::string::npos);

  Chart flat{"flat", "x", "y", {{"c", {1, 2, 3}, {5, 5, 5}}}};
  svg = render_svg(flat);
  CHECK(xml_problem(svg) == "");
  CHECK(polyline_sizes(svg) == std::vector<size_t>{3});
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find(">5.0<") != std::string::npos);  // the constant sits on a tick of the widened axis

  Chart empty{"empty", "x", "y", {{"none", {kNaN}, {1}}}};
  svg = render_svg(empty);
  CHECK(xml_problem(svg) == "");
  CHECK(svg.find("no data") != std::string::npos);
  CHECK(svg.find("<polyline") == std::string::npos);
}

TEST_CASE("render_svg: log x axis skips x <= 0 and labels decades") {
  Chart c{
      "lr sweep", "learning rate", "loss", {{"loss", {1e3, 3e3, 1e4, 1e5, 0, -5}, {1, 2, 3, 4, 5, 6}}}, true};
  const std::string svg = render_svg(c);
  CHECK(xml_problem(svg) == "");
  CHECK(polyline_sizes(svg) == std::vector<size_t>{4});
  for (const char* label : {">1000<", ">10000<", ">100000<"})
    CHECK_MESSAGE(svg.find(label) != std::string::npos, label);
  CHECK(svg.find("learning rate (log)") != std::string::npos);
  // Equal ratios are equal distances: 1e3 -> 1e4 spans as many pixels as 1e4 -> 1e5.
  std::smatch m;
  REQUIRE(std::regex_search(svg, m,
                            std::regex("points=\"([0-9.]+),[0-9.]+ [0-9.]+,[0-9.]+ ([0-9.]+),[0-9.]+ "
                                       "([0-9.]+),")));
  const double x3 = std::stod(m[1]), x4 = std::stod(m[2]), x5 = std::stod(m[3]);
  CHECK(x4 - x3 == doctest::Approx(x5 - x4).epsilon(0.01));
}

TEST_CASE("render_svg: mismatched x and y lengths throw naming the series") {
  Chart c{"t", "x", "y", {{"bad series", {1, 2, 3}, {1, 2}}}};
  CHECK_THROWS_AS(render_svg(c), kiln::InputError);
  try {
    render_svg(c);
  } catch (const kiln::InputError& e) {
    CHECK(std::string(e.what()).find("bad series") != std::string::npos);
  }
}

TEST_CASE("write_svg: panels in a grid, written to a file") {
  std::vector<Chart> panels = {example_chart(),
                               Chart{"metric", "epoch", "acc", {{"acc", {1, 2}, {0.5, 0.9}}}}};
  const std::string grid = render_svg_grid(panels);
  CHECK(grid.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1280\" height=\"400\"", 0) == 0);
  CHECK(grid.find("translate(640 0)") != std::string::npos);
  CHECK(xml_problem(grid) == "");
  CHECK(polyline_sizes(grid) == std::vector<size_t>{3, 2, 2});
  CHECK(render_svg_grid(std::vector<Chart>(5, example_chart())).find("width=\"1920\" height=\"800\"") !=
        std::string::npos);

  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/plot_test_curves.svg";
  write_svg(path, panels);
  std::ifstream f(path);
  std::stringstream read;
  read << f.rdbuf();
  CHECK(read.str() == grid);

  const std::string bad = "/nonexistent-dir-kiln/curves.svg";
  try {
    write_svg(bad, panels);
    FAIL("write_svg to a missing directory did not throw");
  } catch (const kiln::InputError& e) {
    CHECK(std::string(e.what()).find(bad) != std::string::npos);
  }
}

TEST_CASE("bar charts: one bar per positive value, the legend, and mismatched series are an error") {
  kiln::plot::BarChart c{"Weights per layer", "weights", {"fc1", "fc<2>"}, {{"total", {100, 50}}, {"remaining", {20, 0}}}};
  const std::string svg = kiln::plot::render_bar_svg(c);
  size_t bars = 0;
  for (size_t at = svg.find("<rect x="); at != std::string::npos; at = svg.find("<rect x=", at + 1)) ++bars;
  CHECK(bars == 3 + 2);  // three positive values, two legend swatches
  CHECK(svg.find("fc&lt;2&gt;") != std::string::npos);
  CHECK(svg.find(">remaining<") != std::string::npos);
  c.series[1].second.pop_back();
  CHECK_THROWS_AS(kiln::plot::render_bar_svg(c), kiln::InputError);
}
