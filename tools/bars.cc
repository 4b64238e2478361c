// Grouped bar charts in SVG (plot.h): the per-layer weights of a pruned model, total against remaining.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/check.h"
#include "tools/plot.h"

namespace kiln::plot {

std::string render_bar_svg(const BarChart& c, int width, int height) {
  for (const auto& [name, values] : c.series)
    if (values.size() != c.categories.size())
      throw InputError("plot: bar series '" + name + "' has " + std::to_string(values.size()) +
                       " values for " + std::to_string(c.categories.size()) + " categories");
  static const char* kColors[] = {"#0072B2", "#E69F00", "#009E73",
                                  "#D55E00", "#CC79A7", "#56B4E9"};  // plot.cc's
  const double left = 70, right = 20, top = 40, bottom = 90;
  const double pw = width - left - right, ph = height - top - bottom;
  double hi = 0;
  for (const auto& s : c.series)
    for (double v : s.second)
      if (std::isfinite(v)) hi = std::max(hi, v);
  std::vector<double> ticks = nice_ticks(0, hi > 0 ? hi : 1);
  const double top_v = ticks.back(), step = ticks.size() > 1 ? ticks[1] - ticks[0] : top_v;
  auto y = [&](double v) { return top + ph * (1 - v / top_v); };
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
        "fill=\"white\"/>\n"
     << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
     << xml_escape(c.title) << "</text>\n";
  for (double t : ticks) {
    os << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << y(t) << "\" y2=\"" << y(t)
       << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << y(t) + 4 << "\" text-anchor=\"end\">"
       << format_tick(t, step) << "</text>\n";
  }
  os << "<text transform=\"translate(16 " << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
     << xml_escape(c.y_label) << "</text>\n";
  const size_t n = c.categories.size(), k = std::max<size_t>(1, c.series.size());
  const double group = n ? pw / static_cast<double>(n) : pw, bar = group * 0.8 / static_cast<double>(k);
  for (size_t i = 0; i < n; ++i) {
    const double x0 = left + group * static_cast<double>(i) + group * 0.1;
    for (size_t j = 0; j < c.series.size(); ++j) {
      const double v = c.series[j].second[i];
      if (!std::isfinite(v) || v <= 0) continue;
      os << "<rect x=\"" << x0 + bar * static_cast<double>(j) << "\" y=\"" << y(v) << "\" width=\""
         << bar * 0.95 << "\" height=\"" << top + ph - y(v) << "\" fill=\"" << kColors[j % 6] << "\"><title>"
         << xml_escape(c.series[j].first + " " + c.categories[i]) << ": " << v << "</title></rect>\n";
    }
    const double cx = left + group * (static_cast<double>(i) + 0.5);
    os << "<text transform=\"translate(" << cx << " " << top + ph + 14 << ") rotate(30)\">"
       << xml_escape(c.categories[i]) << "</text>\n";
  }
  os << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << top + ph << "\" y2=\"" << top + ph
     << "\" stroke=\"black\"/>\n";
  for (size_t j = 0; j < c.series.size(); ++j)  // legend, top right
    os << "<rect x=\"" << left + pw - 150 << "\" y=\"" << top + 4 + 18 * static_cast<double>(j)
       << "\" width=\"12\" height=\"12\" fill=\"" << kColors[j % 6] << "\"/><text x=\"" << left + pw - 132
       << "\" y=\"" << top + 14 + 18 * static_cast<double>(j) << "\">" << xml_escape(c.series[j].first)
       << "</text>\n";
  os << "</svg>\n";
  return os.str();
}

void write_bar_svg(const std::string& path, const BarChart& chart) {
  const std::string svg = render_bar_svg(chart);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f) f << svg;
  if (f) f.close();
  if (!f) throw InputError("plot: cannot write SVG file '" + path + "': " + std::strerror(errno));
}

}  // namespace kiln::plot
