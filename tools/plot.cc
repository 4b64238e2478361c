#include "tools/plot.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "engine/check.h"

namespace kiln::plot {

namespace {

// Okabe-Ito, reordered so that the first colours are the most distinct on white; yellow last.
constexpr std::array<const char*, 8> kPalette = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                                 "#CC79A7", "#56B4E9", "#000000", "#F0E442"};

std::string num(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// "%.3g" without the exponent's '+' and leading zeros: 1e+06 -> 1e6, 2.5e-05 -> 2.5e-5.
std::string short_exponent(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  std::string s = buf;
  const size_t e = s.find('e');
  if (e == std::string::npos) return s;
  std::string mant = s.substr(0, e), exp = s.substr(e + 1);
  std::string sign = exp[0] == '-' ? "-" : "";
  size_t k = (exp[0] == '-' || exp[0] == '+') ? 1 : 0;
  while (k + 1 < exp.size() && exp[k] == '0') ++k;
  return mant + "e" + sign + exp.substr(k);
}

// One axis: maps data values to pixels between p0 (at lo) and p1 (at hi).
struct Axis {
  bool log = false;
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  double p0 = 0, p1 = 1;
  double t(double v) const { return log ? std::log10(v) : v; }
  double px(double v) const {
    const double a = t(lo), b = t(hi);
    return b > a ? p0 + (t(v) - a) / (b - a) * (p1 - p0) : 0.5 * (p0 + p1);
  }
  std::string label(size_t i) const {
    if (log) return format_tick(ticks[i], ticks[i]);
    return format_tick(ticks[i], ticks.size() > 1 ? ticks[1] - ticks[0] : std::fabs(ticks[i]));
  }
};

Axis make_axis(const std::vector<double>& values, bool log) {
  Axis a;
  a.log = log;
  if (values.empty()) {
    a.ticks = log ? nice_log_ticks(1, 10) : nice_ticks(0, 1);
  } else {
    const auto mm = std::minmax_element(values.begin(), values.end());
    a.ticks = log ? nice_log_ticks(*mm.first, *mm.second) : nice_ticks(*mm.first, *mm.second);
  }
  a.lo = a.ticks.front();
  a.hi = a.ticks.back();
  return a;
}

bool usable(double x, double y, bool log_x) {
  return std::isfinite(x) && std::isfinite(y) && (!log_x || x > 0);
}

// The panel's content, drawn in a width x height box at the origin.
std::string render_panel(const Chart& chart, int width, int height) {
  for (const Series& s : chart.series) {
    if (s.x.size() != s.y.size()) {
      throw InputError("plot: series '" + s.name + "' in chart '" + chart.title + "' has " +
                       std::to_string(s.x.size()) + " x values but " + std::to_string(s.y.size()) +
                       " y values");
    }
  }
  std::vector<double> xs, ys;
  for (const Series& s : chart.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], s.y[i], chart.log_x)) continue;
      xs.push_back(s.x[i]);
      ys.push_back(s.y[i]);
    }
  }
  const double left = 64, right = width - 16.0, top = chart.title.empty() ? 16.0 : 36.0;
  const double bottom = height - (chart.x_label.empty() ? 28.0 : 46.0);
  Axis ax = make_axis(xs, chart.log_x), ay = make_axis(ys, false);
  ax.p0 = left, ax.p1 = right;
  ay.p0 = bottom, ay.p1 = top;

  std::ostringstream o;
  o << "<g>\n<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"white\"/>\n";
  // Grid and tick labels.
  o << "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n";
  for (double v : ax.ticks) {
    o << "<line x1=\"" << num(ax.px(v)) << "\" y1=\"" << num(top) << "\" x2=\"" << num(ax.px(v)) << "\" y2=\""
      << num(bottom) << "\"/>\n";
  }
  for (double v : ay.ticks) {
    o << "<line x1=\"" << num(left) << "\" y1=\"" << num(ay.px(v)) << "\" x2=\"" << num(right) << "\" y2=\""
      << num(ay.px(v)) << "\"/>\n";
  }
  o << "</g>\n<g fill=\"#333\" font-size=\"11\">\n";
  for (size_t i = 0; i < ax.ticks.size(); ++i) {
    o << "<text x=\"" << num(ax.px(ax.ticks[i])) << "\" y=\"" << num(bottom + 16)
      << "\" text-anchor=\"middle\">" << xml_escape(ax.label(i)) << "</text>\n";
  }
  for (size_t i = 0; i < ay.ticks.size(); ++i) {
    o << "<text x=\"" << num(left - 6) << "\" y=\"" << num(ay.px(ay.ticks[i]) + 4)
      << "\" text-anchor=\"end\">" << xml_escape(ay.label(i)) << "</text>\n";
  }
  o << "</g>\n<rect x=\"" << num(left) << "\" y=\"" << num(top) << "\" width=\"" << num(right - left)
    << "\" height=\"" << num(bottom - top) << "\" fill=\"none\" stroke=\"#555\"/>\n";
  // Title and axis labels.
  if (!chart.title.empty()) {
    o << "<text x=\"" << num(width / 2.0) << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" "
      << "font-weight=\"bold\">" << xml_escape(chart.title) << "</text>\n";
  }
  if (!chart.x_label.empty()) {
    o << "<text x=\"" << num((left + right) / 2) << "\" y=\"" << num(height - 10.0)
      << "\" text-anchor=\"middle\">" << xml_escape(chart.x_label) << (chart.log_x ? " (log)" : "")
      << "</text>\n";
  }
  if (!chart.y_label.empty()) {
    const double cy = (top + bottom) / 2;
    o << "<text x=\"16\" y=\"" << num(cy) << "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " << num(cy)
      << ")\">" << xml_escape(chart.y_label) << "</text>\n";
  }
  if (xs.empty()) {
    o << "<text x=\"" << num((left + right) / 2) << "\" y=\"" << num((top + bottom) / 2)
      << "\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n";
  }
  // Data. `ink` samples the drawn lines (in pixels) so that the legend can avoid them.
  std::vector<std::pair<double, double>> ink;
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    const char* colour = kPalette[k % kPalette.size()];
    std::ostringstream pts, dots;
    size_t n = 0;
    double prev_x = 0, prev_y = 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], s.y[i], chart.log_x)) continue;
      const double fx = ax.px(s.x[i]), fy = ay.px(s.y[i]);
      const double x0 = n ? prev_x : fx, y0 = n ? prev_y : fy;
      for (int j = n ? 1 : 8; j <= 8; ++j)
        ink.emplace_back(x0 + j / 8.0 * (fx - x0), y0 + j / 8.0 * (fy - y0));
      prev_x = fx, prev_y = fy;
      const std::string px = num(fx), py = num(fy);
      pts << (n ? " " : "") << px << "," << py;
      dots << "<circle cx=\"" << px << "\" cy=\"" << py << "\" r=\"3\"/>\n";
      ++n;
    }
    o << "<g>\n";
    if (n > 0) {
      o << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" stroke-linejoin=\"round\" "
        << "points=\"" << pts.str() << "\"/>\n";
    }
    if (n > 0 && (s.markers || n == 1)) o << "<g fill=\"" << colour << "\">\n" << dots.str() << "</g>\n";
    o << "</g>\n";
  }
  // Legend, in the plot corner where it hides the least of the lines.
  size_t longest = 0, named = 0;
  for (const Series& s : chart.series) {
    longest = std::max(longest, s.name.size());
    named += s.name.empty() ? 0 : 1;
  }
  if (named > 0) {
    const double row = 16, lw = 40 + 6.5 * static_cast<double>(longest);
    const double lh = 8 + row * static_cast<double>(chart.series.size());
    const std::array<std::pair<double, double>, 4> corners = {{{right - lw - 8, top + 8},
                                                               {left + 8, top + 8},
                                                               {right - lw - 8, bottom - lh - 8},
                                                               {left + 8, bottom - lh - 8}}};
    size_t best = 0, best_count = std::numeric_limits<size_t>::max();
    for (size_t c = 0; c < corners.size(); ++c) {
      const double pad = 6, x0 = corners[c].first - pad, y0 = corners[c].second - pad;
      size_t count = 0;
      for (const auto& [px, py] : ink) {
        if (px >= x0 && px <= x0 + lw + 2 * pad && py >= y0 && py <= y0 + lh + 2 * pad) ++count;
      }
      if (count < best_count) best = c, best_count = count;
    }
    const double lx = corners[best].first, ly = corners[best].second;
    o << "<g font-size=\"11\">\n<rect x=\"" << num(lx) << "\" y=\"" << num(ly) << "\" width=\"" << num(lw)
      << "\" height=\"" << num(lh) << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n";
    for (size_t k = 0; k < chart.series.size(); ++k) {
      const double y = ly + 4 + row * (static_cast<double>(k) + 0.5);
      const char* colour = kPalette[k % kPalette.size()];
      o << "<line x1=\"" << num(lx + 6) << "\" y1=\"" << num(y) << "\" x2=\"" << num(lx + 26) << "\" y2=\""
        << num(y) << "\" stroke=\"" << colour << "\" stroke-width=\"2\"/>\n";
      o << "<text x=\"" << num(lx + 32) << "\" y=\"" << num(y + 4) << "\">"
        << xml_escape(chart.series[k].name) << "</text>\n";
    }
    o << "</g>\n";
  }
  o << "</g>\n";
  return o.str();
}

std::string svg_open(int width, int height) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
         std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
         "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n";
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  KILN_CHECK(std::isfinite(lo) && std::isfinite(hi), "nice_ticks needs a finite range");
  KILN_CHECK(target >= 1, "nice_ticks needs target >= 1, got " + std::to_string(target));
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(std::fabs(lo), std::fabs(hi))) {
    const double pad = lo == 0 ? 1.0 : 0.1 * std::fabs(lo);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last + 0.5; k += 1) {
    const double v = k * step;
    ticks.push_back(std::fabs(v) < 1e-9 * step ? 0.0 : v);
  }
  return ticks;
}

std::vector<double> nice_log_ticks(double lo, double hi) {
  KILN_CHECK(lo > 0 && hi > 0 && std::isfinite(lo) && std::isfinite(hi), "nice_log_ticks needs a range > 0");
  if (lo > hi) std::swap(lo, hi);
  int e0 = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int e1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (e0 == e1) --e0, ++e1;
  std::vector<double> ticks;
  if (e1 - e0 == 1) {
    for (double m : {1.0, 2.0, 5.0}) ticks.push_back(m * std::pow(10.0, e0));
    ticks.push_back(std::pow(10.0, e1));
    return ticks;
  }
  const int stride = (e1 - e0 + 7) / 8;  // at most 8 intervals
  e0 = static_cast<int>(std::floor(static_cast<double>(e0) / stride)) * stride;
  e1 = static_cast<int>(std::ceil(static_cast<double>(e1) / stride)) * stride;
  for (int e = e0; e <= e1; e += stride) ticks.push_back(std::pow(10.0, e));
  return ticks;
}

std::string format_tick(double value, double step) {
  step = std::fabs(step);
  if (step == 0 || !std::isfinite(step)) step = std::fabs(value) > 0 ? std::fabs(value) : 1;
  if (std::fabs(value) < 1e-9 * step) value = 0;
  if (value != 0 && (std::fabs(value) >= 1e6 || step < 1e-4)) return short_exponent(value);
  const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  return num(value, decimals);
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_svg(const Chart& chart, int width, int height) {
  return svg_open(width, height) + render_panel(chart, width, height) + "</svg>\n";
}

std::string render_svg_grid(const std::vector<Chart>& panels, int panel_width, int panel_height) {
  if (panels.empty()) throw InputError("plot: no panels to draw");
  const int n = static_cast<int>(panels.size());
  const int cols = n == 1 ? 1 : n <= 4 ? 2 : 3;
  const int rows = (n + cols - 1) / cols;
  std::string out = svg_open(cols * panel_width, rows * panel_height);
  for (int i = 0; i < n; ++i) {
    out += "<g transform=\"translate(" + std::to_string(i % cols * panel_width) + " " +
           std::to_string(i / cols * panel_height) + ")\">\n";
    out += render_panel(panels[static_cast<size_t>(i)], panel_width, panel_height);
    out += "</g>\n";
  }
  return out + "</svg>\n";
}

void write_svg(const std::string& path, const std::vector<Chart>& panels) {
  const std::string svg = render_svg_grid(panels);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f) f << svg;
  if (f) f.close();
  if (!f) throw InputError("plot: cannot write SVG file '" + path + "': " + std::strerror(errno));
}

}  // namespace kiln::plot
