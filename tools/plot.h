// SVG line and scatter charts, written directly (no plotting tool needed): training curves, metric
// curves, Pareto fronts.
//
//   kiln::plot::Chart loss{"Loss", "epoch", "loss", {{"train", epochs, train_loss}, {"val", epochs,
//   val_loss}}}; kiln::plot::Chart acc{"Accuracy", "epoch", "accuracy", {{"val", epochs, val_acc}}};
//   kiln::plot::write_svg("runs/mnist/curves.svg", {loss, acc});   // two panels side by side
//
// Points whose x or y is NaN or infinite (or x <= 0 on a log axis) are skipped. Axes get about five "nice"
// ticks (1, 2 or 5 times a power of ten), or decades on a log axis, and span the ticks around the data.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace kiln::plot {

struct Series {
  std::string name;
  std::vector<double> x, y;  // equal lengths
  bool markers = false;      // draw a dot at each point (a series with one finite point always gets one)
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_x = false;
};

// A complete SVG document with one chart. Throws kiln::InputError when a series' x and y differ in length.
std::string render_svg(const Chart& chart, int width = 640, int height = 400);

// A complete SVG document with the panels laid out in a grid, left to right then top to bottom (up to two
// per row for four panels or fewer, three per row beyond); each panel is panel_width x panel_height.
std::string render_svg_grid(const std::vector<Chart>& panels, int panel_width = 640, int panel_height = 400);

// Writes render_svg_grid(panels) to `path`; throws kiln::InputError naming the path if it cannot be written.
void write_svg(const std::string& path, const std::vector<Chart>& panels);

// Tick values covering [lo, hi] on a linear axis: multiples of a step 1, 2 or 5 x 10^k chosen so that
// there are about `target` intervals; the first tick is <= lo and the last >= hi. lo == hi is widened.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// Ticks for a log axis covering [lo, hi] (both > 0): the powers of ten from lo's decade up to hi's (every
// second, third, ... decade when that would give more than 8), with 2 and 5 times each power added when the
// range is a single decade. lo == hi == 10^k gets the decades either side.
std::vector<double> nice_log_ticks(double lo, double hi);

// Tick label text: as many decimals as `step` needs ("0.5", "1.0", "250"); exponent form for values of a
// million or more, or steps below 1e-4 ("1e6", "2.5e-5").
std::string format_tick(double value, double step);

// Grouped bars: one group per category (e.g. a layer), one bar per series in each (e.g. total and remaining
// weights), on a linear axis from 0. Written by write_bar_svg (bars.cc).
struct BarChart {
  std::string title, y_label;
  std::vector<std::string> categories;
  std::vector<std::pair<std::string, std::vector<double>>> series;  // name, one value per category
};
std::string render_bar_svg(const BarChart& chart, int width = 720, int height = 420);
void write_bar_svg(const std::string& path, const BarChart& chart);  // InputError naming the path on failure

// Escapes & < > " ' for SVG text and attributes.
std::string xml_escape(const std::string& s);

}  // namespace kiln::plot
