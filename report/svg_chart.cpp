#include "report/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "report/table.h"

namespace kvsafe::report {

namespace {

constexpr int kWidth = 640;
constexpr int kHeight = 400;
constexpr double kTop = 40;    // room for the title
constexpr double kLeft = 64;   // room for the y label and tick labels
constexpr double kBelow = 52;  // room for the x tick labels and the x label
constexpr double kMargin = 16;

// Okabe & Ito, "Color Universal Design" (2008): distinguishable under every common colour
// vision deficiency. Yellow is last: it is faint on white.
constexpr std::array<const char*, 8> kPalette = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                 "#E69F00", "#56B4E9", "#000000", "#F0E442"};
constexpr std::size_t kShapes = 6;

// Viridis (matplotlib's default map) at 0, 1/8, .., 1: perceptually uniform, colour-blind
// safe, and readable in greyscale print.
constexpr std::array<std::array<int, 3>, 9> kViridis = {{{0x44, 0x01, 0x54},
                                                         {0x47, 0x2D, 0x7B},
                                                         {0x3B, 0x52, 0x8B},
                                                         {0x2C, 0x72, 0x8E},
                                                         {0x21, 0x91, 0x8C},
                                                         {0x28, 0xAE, 0x80},
                                                         {0x5E, 0xC9, 0x62},
                                                         {0xAD, 0xDC, 0x30},
                                                         {0xFD, 0xE7, 0x25}}};

// Coordinates with 1 decimal; a rounded -0 prints without its sign (byte-stable output).
std::string px(double value) {
  std::string out = fmt::format("{:.1f}", value);
  if (out == "-0.0") out = "0.0";
  return out;
}

// Up to `decimals` places, trailing zeros trimmed, never "-0".
std::string trimmed(double value, int decimals) {
  std::string out = fmt::format("{:.{}f}", value, decimals);
  if (out.find('.') != std::string::npos) {
    out.erase(out.find_last_not_of('0') + 1);
    if (out.ends_with('.')) out.pop_back();
  }
  if (out == "-0") out = "0";
  return out;
}

std::string percent_1(double fraction) {
  return px(fraction * 100);
}

std::string value_text(double value, bool percent) {
  return percent ? percent_1(value) + "%" : trimmed(value, 6);
}

bool has_ci(const ChartPoint& point) {
  return point.low && point.high && std::isfinite(*point.low) && std::isfinite(*point.high);
}

// " [21.1, 57.3]" (percent, as the tables print a Wilson interval) or "" without a CI.
std::string ci_text(const ChartPoint& point, bool percent) {
  if (!has_ci(point)) return "";
  if (percent) return " [" + percent_1(*point.low) + ", " + percent_1(*point.high) + "]";
  return " [" + trimmed(*point.low, 6) + ", " + trimmed(*point.high, 6) + "]";
}

std::string tick_text(double value, bool percent) {
  return percent ? trimmed(value * 100, 2) + "%" : trimmed(value, 4);
}

// NOTE: there are no font metrics offline; 0.6 em per code point is sans-serif's average,
// enough to size margins and legends.
double text_width(const std::string& text, double font_size) {
  std::size_t n = 0;
  for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return static_cast<double>(n) * font_size * 0.6;
}

void check_name(const char* kind, const std::string& name, const std::string& title) {
  KVSAFE_CHECK(!name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                       "0123456789_-") == std::string::npos,
               kind, " name must be [A-Za-z0-9_-]+, got \"", name, "\" (title \"", title, "\")");
}

std::string text(double x, double y, const std::string& content, const char* anchor, const std::string& extra = "") {
  return fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"{}\"{}>{}</text>\n", px(x), px(y), anchor, extra,
                     escape_html(content));
}

// An element with a tooltip: `<tag attrs><title>tip</title></tag>`.
std::string with_title(const char* tag, const std::string& attributes, const std::string& tip) {
  return fmt::format("<{} {}><title>{}</title></{}>\n", tag, attributes, escape_html(tip), tag);
}

std::string open_svg(const std::string& name, int width, int height, const std::string& title,
                     const std::string& desc) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "role=\"img\" id=\"{2}\" data-figure=\"{2}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<title>{3}</title>\n<desc>{4}</desc>\n<rect width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n"
      "{5}",
      width, height, name, escape_html(title.empty() ? name : title), escape_html(desc),
      title.empty() ? std::string() : text(width / 2.0, 24, title, "middle", " font-size=\"15\" font-weight=\"bold\""));
}

struct Box {
  double left = 0, top = 0, right = 0, bottom = 0;
  double center_x() const { return (left + right) / 2; }
  double center_y() const { return (top + bottom) / 2; }
};

// Maps a domain [lo, hi] (log2 when `log`) onto the pixels [from, to].
struct Scale {
  double lo = 0, hi = 1, from = 0, to = 1;
  bool log = false;
  double operator()(double value) const {
    const auto f = [this](double v) { return log ? std::log2(v) : v; };
    return from + (f(value) - f(lo)) / (f(hi) - f(lo)) * (to - from);
  }
};

struct Steps {
  double step = 1, lo = 0, hi = 1;  // lo and hi are multiples of step when widened
};

// A round step (1, 2, 2.5 or 5 × 10^k) giving 3 to 6 intervals over [lo, hi]. With `widen` the
// range grows to whole steps: the least growth wins, then the count nearest 4 ([0, 1] gets
// 0, 25, 50, 75, 100%, not 0, 20, .., 100%), then the finer step.
Steps choose_steps(double lo, double hi, bool widen) {
  Steps best;
  double best_growth = 0, best_distance = 0;
  bool found = false;
  const double top = std::floor(std::log10(hi - lo));
  for (double e = top - 2; e <= top + 1; ++e) {
    for (const double mantissa : {1.0, 2.0, 2.5, 5.0}) {
      const double step = mantissa * std::pow(10.0, e);
      const double a = widen ? std::floor(lo / step + 1e-9) * step : lo;
      const double b = widen ? std::ceil(hi / step - 1e-9) * step : hi;
      const double intervals = (b - a) / step;
      if (intervals < 3 - 1e-9 || intervals > 6 + 1e-9) continue;
      const double growth = (b - a) / (hi - lo), distance = std::abs(intervals - 4);
      if (found && (growth > best_growth * (1 + 1e-9) ||
                    (growth >= best_growth * (1 - 1e-9) && distance >= best_distance - 1e-9)))
        continue;
      best = {.step = step, .lo = a, .hi = b};
      best_growth = growth;
      best_distance = distance;
      found = true;
    }
  }
  KVSAFE_ASSERT(found, "no tick step for [", lo, ", ", hi, "]");
  return best;
}

// The multiples of `step` in [lo, hi], each computed from its integer index so that no
// rounding error accumulates (0.1 * 3, not 0.1 + 0.1 + 0.1).
std::vector<double> ticks_between(double lo, double hi, double step) {
  std::vector<double> out;
  const double slack = step * 1e-9;
  for (auto k = static_cast<std::int64_t>(std::ceil((lo - slack) / step)); out.size() < 100; ++k) {
    const double value = static_cast<double>(k) * step;
    if (value > hi + slack) break;
    out.push_back(value);
  }
  return out;
}

struct YAxis {
  Scale scale{};
  std::vector<double> ticks{};
};

// The y range of LineChart/BarChart (see the header) from the finite values to show, mapped
// onto the box's height.
YAxis y_axis(const char* kind, const std::string& name, const std::vector<double>& values,
             const std::optional<double>& y_min, const std::optional<double>& y_max, bool percent, bool include_zero,
             const Box& box) {
  KVSAFE_CHECK(!y_min || std::isfinite(*y_min), kind, " \"", name, "\": y_min is not finite");
  KVSAFE_CHECK(!y_max || std::isfinite(*y_max), kind, " \"", name, "\": y_max is not finite");
  KVSAFE_CHECK(!y_min || !y_max || *y_min < *y_max, kind, " \"", name, "\": y_min ", *y_min, " >= y_max ", *y_max);
  double lo = 0, hi = 1;
  if (!values.empty()) {
    const auto [min_it, max_it] = std::minmax_element(values.begin(), values.end());
    lo = *min_it;
    hi = *max_it;
  }
  if (include_zero) {
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
  }
  const double pad = hi > lo ? (hi - lo) * 0.04 : (lo != 0 ? std::abs(lo) * 0.1 : (percent ? 0.1 : 1));
  // NOTE: padding must not invent negative rates or rates above 100%.
  const double padded_lo = (lo >= 0 && lo - pad < 0) ? 0 : lo - pad;
  const double padded_hi = (percent && hi <= 1 && hi + pad > 1) ? 1 : hi + pad;
  const Steps automatic = choose_steps(padded_lo, padded_hi, true);
  lo = automatic.lo;
  hi = automatic.hi;
  double step = automatic.step;
  const double span = hi - lo;
  if (y_min) lo = *y_min;
  if (y_max) hi = *y_max;
  // One bound given and the data all beyond it: keep the automatic span on the other side.
  if (lo >= hi && y_min) hi = lo + span;
  if (lo >= hi) lo = hi - span;
  if (y_min || y_max) step = choose_steps(lo, hi, false).step;
  YAxis out;
  out.scale = Scale{.lo = lo, .hi = hi, .from = box.bottom, .to = box.top};
  out.ticks = ticks_between(lo, hi, step);
  return out;
}

// Title area, horizontal grid with y tick labels, the plot's border and both axis labels.
std::string frame(const Box& box, const YAxis& y, bool percent, const std::string& x_label,
                  const std::string& y_label) {
  std::string out;
  for (const double tick : y.ticks) {
    const std::string py = px(y.scale(tick));
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e0e0e0\"/>\n", px(box.left), py,
                       px(box.right), py);
    out += text(box.left - 6, y.scale(tick) + 4, tick_text(tick, percent), "end");
  }
  out += fmt::format(
      "<rect class=\"plot\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444444\"/>\n",
      px(box.left), px(box.top), px(box.right - box.left), px(box.bottom - box.top));
  if (!x_label.empty()) out += text(box.center_x(), box.bottom + 40, x_label, "middle");
  if (!y_label.empty())
    out += fmt::format(
        "<text x=\"0\" y=\"0\" transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        px(box.center_y()), escape_html(y_label));
  return out;
}

std::string no_data(const Box& box) {
  return text(box.center_x(), box.center_y() + 5, "no data", "middle", " fill=\"#777777\" font-size=\"14\"");
}

// Series i's marker: shape i mod 6 in colour i mod 8; a white rim keeps it visible on lines.
std::string marker(std::size_t series, double x, double y, const std::string& tip) {
  const char* colour = kPalette[series % kPalette.size()];
  const std::string fill = fmt::format("fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"0.8\"", colour);
  const auto path = [&](std::initializer_list<std::pair<double, double>> corners) {
    std::string d;
    for (const auto& [dx, dy] : corners) d += (d.empty() ? "M" : " L") + px(x + dx) + " " + px(y + dy);
    return fmt::format("d=\"{} Z\" {}", d, fill);
  };
  switch (series % kShapes) {
    case 0:
      return with_title("circle", fmt::format("cx=\"{}\" cy=\"{}\" r=\"4\" {}", px(x), px(y), fill), tip);
    case 1:
      return with_title(
          "rect", fmt::format("x=\"{}\" y=\"{}\" width=\"7\" height=\"7\" {}", px(x - 3.5), px(y - 3.5), fill), tip);
    case 2:
      return with_title("path", path({{0, -4.8}, {4.4, 3.2}, {-4.4, 3.2}}), tip);
    case 3:
      return with_title("path", path({{0, -5}, {5, 0}, {0, 5}, {-5, 0}}), tip);
    case 4:
      return with_title("path", path({{0, 4.8}, {4.4, -3.2}, {-4.4, -3.2}}), tip);
    default:
      return with_title("path",
                        fmt::format("d=\"M{} {} L{} {} M{} {} L{} {}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"",
                                    px(x - 3.5), px(y - 3.5), px(x + 3.5), px(y + 3.5), px(x - 3.5), px(y + 3.5),
                                    px(x + 3.5), px(y - 3.5), colour),
                        tip);
  }
}

std::string whisker(const char* colour, double x, double low, double high) {
  return fmt::format(
      "<path d=\"M{0} {1} L{0} {2} M{3} {1} L{4} {1} M{3} {2} L{4} {2}\" fill=\"none\" stroke=\"{5}\" "
      "stroke-width=\"1.2\"/>\n",
      px(x), px(low), px(high), px(x - 3), px(x + 3), colour);
}

// Width a right-hand legend of these names needs, 0 for fewer than two series.
double legend_width(const std::vector<std::string>& names) {
  if (names.size() < 2) return 0;
  double widest = 0;
  for (const auto& name : names) widest = std::max(widest, text_width(name, 12));
  return std::min(220.0, widest + 40);
}

// `swatch(i, x, y)` draws series i's key centred at (x, y).
template <class Swatch>
std::string legend(const std::vector<std::string>& names, double x, double top, Swatch swatch) {
  if (names.size() < 2) return "";
  std::string out = "<g class=\"legend\">\n";
  for (std::size_t i = 0; i < names.size(); ++i) {
    const double y = top + 8 + 18 * static_cast<double>(i);
    out += swatch(i, x + 10, y);
    out += text(x + 26, y + 4, names[i], "start");
  }
  return out + "</g>\n";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// Every distinct x when at most 12 fit without their labels touching; else powers of two
// (log2 axis) or round steps.
std::vector<double> default_x_ticks(std::vector<double> xs, const Scale& x) {
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  bool fits = !xs.empty() && xs.size() <= 12;
  for (std::size_t i = 1; fits && i < xs.size(); ++i) {
    const double room = (text_width(tick_text(xs[i - 1], false), 12) + text_width(tick_text(xs[i], false), 12)) / 2;
    fits = std::abs(x(xs[i]) - x(xs[i - 1])) >= room + 6;
  }
  if (fits) return xs;
  std::vector<double> out;
  if (x.log) {
    const double a = std::ceil(std::log2(x.lo) - 1e-9), b = std::floor(std::log2(x.hi) + 1e-9);
    if (b > a)
      for (const double k : ticks_between(a, b, std::ceil((b - a) / 6))) out.push_back(std::exp2(k));
  }
  // NOTE: a narrow log2 range ([1.01, 1.3]) holds no two powers of two: round steps instead.
  if (out.size() < 2) out = ticks_between(x.lo, x.hi, choose_steps(x.lo, x.hi, false).step);
  return out;
}

}  // namespace

std::string render_svg(const LineChart& chart) {
  check_name("line chart", chart.name, chart.title);
  const std::string& name = chart.name;
  for (const double tick : chart.x_ticks) {
    KVSAFE_CHECK(std::isfinite(tick), "line chart \"", name, "\": x tick ", tick, " is not finite");
    KVSAFE_CHECK(!chart.x_log || tick > 0, "line chart \"", name, "\": x tick ", tick, " <= 0 on a log2 x axis");
  }
  for (const auto& line : chart.reference_lines)
    KVSAFE_CHECK(std::isfinite(line.y), "line chart \"", name, "\": reference line \"", line.label,
                 "\" has a non-finite y");

  // Per series, the points in x order; NaN y stays in place as a break in the line.
  std::vector<std::vector<ChartPoint>> sorted;
  std::vector<double> xs, ys;
  for (const auto& series : chart.series) {
    auto& points = sorted.emplace_back();
    for (const auto& point : series.points) {
      KVSAFE_CHECK(!chart.x_log || !std::isfinite(point.x) || point.x > 0, "line chart \"", name, "\": series \"",
                   series.name, "\" has x ", point.x, "; a log2 x axis needs every x > 0");
      if (!std::isfinite(point.x)) continue;
      points.push_back(point);
      if (!std::isfinite(point.y)) continue;
      xs.push_back(point.x);
      ys.push_back(point.y);
      if (has_ci(point)) ys.insert(ys.end(), {*point.low, *point.high});
    }
    std::stable_sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.x < b.x; });
  }
  for (const auto& line : chart.reference_lines) ys.push_back(line.y);
  const bool empty = xs.empty();

  std::vector<std::string> names;
  for (const auto& series : chart.series) names.push_back(series.name);
  const Box box{
      .left = kLeft, .top = kTop, .right = kWidth - kMargin - legend_width(names), .bottom = kHeight - kBelow};
  const YAxis y = y_axis("line chart", name, ys, chart.y_min, chart.y_max, chart.y_percent, false, box);
  const auto clamp_y = [&](double v) { return y.scale(std::clamp(v, y.scale.lo, y.scale.hi)); };

  std::vector<double> bounds = xs;
  bounds.insert(bounds.end(), chart.x_ticks.begin(), chart.x_ticks.end());
  Scale x{.lo = chart.x_log ? 1.0 : 0.0, .hi = chart.x_log ? 2.0 : 1.0, .log = chart.x_log};
  if (!bounds.empty()) {
    const auto [min_it, max_it] = std::minmax_element(bounds.begin(), bounds.end());
    // One distinct x: centred, one unit (log2: one doubling) from each edge.
    x.lo = *min_it == *max_it ? (chart.x_log ? *min_it / 2 : *min_it - 1) : *min_it;
    x.hi = *min_it == *max_it ? (chart.x_log ? *max_it * 2 : *max_it + 1) : *max_it;
  }
  x.from = chart.x_reversed ? box.right : box.left;
  x.to = chart.x_reversed ? box.left : box.right;
  const std::vector<double> x_ticks = chart.x_ticks.empty() ? default_x_ticks(xs, x) : chart.x_ticks;

  std::string desc = fmt::format("{} chart. x: {}{}{}. y: {}{}.", chart.lines ? "Line" : "Scatter",
                                 chart.x_label.empty() ? "x" : chart.x_label, chart.x_log ? ", log2" : "",
                                 chart.x_reversed ? ", decreasing" : "", chart.y_label.empty() ? "y" : chart.y_label,
                                 chart.y_percent ? " (percent)" : "");
  if (!names.empty()) desc += " Series: " + join(names) + ".";
  std::string out = open_svg(name, kWidth, kHeight, chart.title, desc);
  out += frame(box, y, chart.y_percent, chart.x_label, chart.y_label);
  for (const double tick : x_ticks) {
    const double at = x(tick);
    out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#444444\"/>\n", px(at),
                       px(box.bottom), px(box.bottom + 5));
    out += text(at, box.bottom + 18, tick_text(tick, false), "middle");
  }
  for (const auto& line : chart.reference_lines) {
    if (line.y < y.scale.lo || line.y > y.scale.hi) continue;
    const double at = y.scale(line.y);
    out += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555555\" stroke-width=\"1.2\" "
        "stroke-dasharray=\"6 4\"/>\n",
        px(box.left), px(at), px(box.right), px(at));
    if (!line.label.empty())
      out += text(box.right - 4, at - 4, line.label, "end", " fill=\"#555555\" font-size=\"11\"");
  }

  const std::string x_name = chart.x_label.empty() ? "x" : chart.x_label;
  for (std::size_t s = 0; s < sorted.size(); ++s) {
    const char* colour = kPalette[s % kPalette.size()];
    const auto& points = sorted[s];
    out += fmt::format("<g class=\"series\" data-series=\"{}\">\n", escape_html(chart.series[s].name));
    // The CI band: one polygon per run of consecutive drawn points that all have a CI; a
    // run of one point (or a scatter) gets a whisker instead.
    for (std::size_t i = 0; i < points.size();) {
      if (!std::isfinite(points[i].y) || !has_ci(points[i])) {
        ++i;
        continue;
      }
      std::size_t end = i;
      while (end < points.size() && std::isfinite(points[end].y) && has_ci(points[end])) ++end;
      if (!chart.lines || end - i == 1) {
        for (std::size_t j = i; j < end; ++j)
          out += whisker(colour, x(points[j].x), clamp_y(*points[j].low), clamp_y(*points[j].high));
      } else {
        std::string polygon;
        for (std::size_t j = i; j < end; ++j)
          polygon += (polygon.empty() ? "" : " ") + px(x(points[j].x)) + "," + px(clamp_y(*points[j].high));
        for (std::size_t j = end; j-- > i;) polygon += " " + px(x(points[j].x)) + "," + px(clamp_y(*points[j].low));
        out += fmt::format("<polygon points=\"{}\" fill=\"{}\" fill-opacity=\"0.18\" stroke=\"none\"/>\n", polygon,
                           colour);
      }
      i = end;
    }
    if (chart.lines) {
      std::string d;
      bool pen_down = false;
      for (const auto& point : points) {
        if (!std::isfinite(point.y)) {
          pen_down = false;
          continue;
        }
        d += (d.empty() ? "" : " ") + std::string(pen_down ? "L" : "M") + px(x(point.x)) + " " + px(y.scale(point.y));
        pen_down = true;
      }
      if (!d.empty())
        out += fmt::format(
            "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n", d, colour);
    }
    for (const auto& point : points) {
      if (!std::isfinite(point.y)) continue;
      const std::string& series_name = chart.series[s].name;
      const std::string tip =
          fmt::format("{}{}({} = {}): {}{}", series_name, series_name.empty() ? "" : " ", x_name, trimmed(point.x, 6),
                      value_text(point.y, chart.y_percent), ci_text(point, chart.y_percent));
      out += marker(s, x(point.x), y.scale(point.y), tip);
    }
    out += "</g>\n";
  }
  out += legend(names, box.right + 12, box.top, [&](std::size_t i, double cx, double cy) {
    std::string key = chart.lines ? fmt::format(
                                        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
                                        "stroke-width=\"2\"/>\n",
                                        px(cx - 10), px(cy), px(cx + 10), px(cy), kPalette[i % kPalette.size()])
                                  : std::string();
    return key + marker(i, cx, cy, names[i]);
  });
  if (empty) out += no_data(box);
  return out + "</svg>\n";
}

std::string render_svg(const BarChart& chart) {
  check_name("bar chart", chart.name, chart.title);
  const std::string& name = chart.name;
  const std::size_t n_series = chart.series_names.size();
  std::vector<double> ys;
  for (const auto& group : chart.groups) {
    KVSAFE_CHECK(group.values.size() == n_series, "bar chart \"", name, "\": group \"", group.category, "\" has ",
                 group.values.size(), " values, series_names has ", n_series);
    for (const auto& value : group.values) {
      if (!std::isfinite(value.y)) continue;
      ys.push_back(value.y);
      if (has_ci(value)) ys.insert(ys.end(), {*value.low, *value.high});
    }
  }
  const bool empty = ys.empty();
  const Box box{.left = kLeft,
                .top = kTop,
                .right = kWidth - kMargin - legend_width(chart.series_names),
                .bottom = kHeight - kBelow};
  const YAxis y = y_axis("bar chart", name, ys, chart.y_min, chart.y_max, chart.y_percent, true, box);
  const auto clamp_y = [&](double v) { return y.scale(std::clamp(v, y.scale.lo, y.scale.hi)); };

  std::vector<std::string> categories;
  for (const auto& group : chart.groups) categories.push_back(group.category);
  std::string desc =
      fmt::format("Bar chart. Categories ({}): {}. y: {}{}.", chart.x_label.empty() ? "x" : chart.x_label,
                  join(categories), chart.y_label.empty() ? "y" : chart.y_label, chart.y_percent ? " (percent)" : "");
  if (!chart.series_names.empty()) desc += " Series: " + join(chart.series_names) + ".";
  std::string out = open_svg(name, kWidth, kHeight, chart.title, desc);
  out += frame(box, y, chart.y_percent, chart.x_label, chart.y_label);

  const double group_width =
      (box.right - box.left) / static_cast<double>(std::max<std::size_t>(1, chart.groups.size()));
  const double bar_width = group_width * 0.8 / static_cast<double>(std::max<std::size_t>(1, n_series));
  const double base = clamp_y(0);
  for (std::size_t g = 0; g < chart.groups.size(); ++g) {
    const auto& group = chart.groups[g];
    const double group_left = box.left + group_width * static_cast<double>(g);
    out += text(group_left + group_width / 2, box.bottom + 18, group.category, "middle");
    for (std::size_t s = 0; s < n_series; ++s) {
      const ChartPoint& value = group.values[s];
      const double left = group_left + group_width * 0.1 + bar_width * static_cast<double>(s);
      if (!std::isfinite(value.y)) {
        // NOTE: a missing bar would read as 0; the gap says so, with the same tooltip shape.
        const std::string& series_name = chart.series_names[s];
        out += fmt::format(
            "<text x=\"{}\" y=\"{}\" font-size=\"9\" fill=\"#777777\" text-anchor=\"middle\"><title>{}</title>not "
            "run</text>\n",
            px(left + bar_width / 2), px(base - 4),
            escape_html(series_name + (series_name.empty() ? "" : ", ") + group.category + ": not run"));
        continue;
      }
      const char* colour = kPalette[s % kPalette.size()];
      const double top = clamp_y(value.y);
      const std::string& series_name = chart.series_names[s];
      const std::string tip = fmt::format("{}{}{}: {}{}", series_name, series_name.empty() ? "" : ", ", group.category,
                                          value_text(value.y, chart.y_percent), ci_text(value, chart.y_percent));
      out += with_title(
          "rect",
          fmt::format("x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"", px(left + bar_width * 0.05),
                      px(std::min(top, base)), px(bar_width * 0.9), px(std::abs(top - base)), colour),
          tip);
      if (has_ci(value)) out += whisker("#222222", left + bar_width / 2, clamp_y(*value.low), clamp_y(*value.high));
    }
  }
  out += legend(chart.series_names, box.right + 12, box.top, [](std::size_t i, double cx, double cy) {
    return fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n", px(cx - 6), px(cy - 6),
                       kPalette[i % kPalette.size()]);
  });
  if (empty) out += no_data(box);
  return out + "</svg>\n";
}

namespace {

std::string viridis(double t) {
  const double at = std::clamp(t, 0.0, 1.0) * 8;
  const auto i = std::min<std::size_t>(7, static_cast<std::size_t>(at));
  const double f = at - static_cast<double>(i);
  std::array<int, 3> rgb{};
  for (std::size_t c = 0; c < 3; ++c)
    rgb[c] = static_cast<int>(std::lround(kViridis[i][c] + (kViridis[i + 1][c] - kViridis[i][c]) * f));
  return fmt::format("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
}

// Viridis grows lighter with t; below about 0.55 white text contrasts better than black.
bool dark(double t) {
  return std::clamp(t, 0.0, 1.0) < 0.55;
}

}  // namespace

std::string render_svg(const Heatmap& chart) {
  check_name("heatmap", chart.name, chart.title);
  const std::string& name = chart.name;
  KVSAFE_CHECK(chart.values.size() == chart.rows.size(), "heatmap \"", name, "\": ", chart.values.size(),
               " rows of values for ", chart.rows.size(), " row labels");
  for (std::size_t r = 0; r < chart.values.size(); ++r)
    KVSAFE_CHECK(chart.values[r].size() == chart.columns.size(), "heatmap \"", name, "\": row ", r, " (\"",
                 chart.rows[r], "\") has ", chart.values[r].size(), " values for ", chart.columns.size(), " columns");
  KVSAFE_CHECK(std::isfinite(chart.min) && std::isfinite(chart.max) && chart.min < chart.max, "heatmap \"", name,
               "\": colour scale min ", chart.min, " must be finite and < max ", chart.max);

  const std::size_t n_rows = chart.rows.size(), n_cols = chart.columns.size();
  const bool empty = n_rows == 0 || n_cols == 0;
  double row_label = 0, column_label = 0;
  for (const auto& row : chart.rows) row_label = std::max(row_label, text_width(row, 12));
  for (const auto& column : chart.columns) column_label = std::max(column_label, text_width(column, 12));
  constexpr double kCell = 28, kLegend = 80, kScale = 120;
  const double left = std::clamp(row_label + 36, 64.0, 240.0);
  const double cell_width = (kWidth - left - kMargin - kLegend) / static_cast<double>(std::max<std::size_t>(1, n_cols));
  // Column labels wider than their cell are drawn slanted, which needs more room below.
  const bool slanted = column_label > cell_width - 4;
  const double labels_below = slanted ? std::min(120.0, column_label * 0.7 + 12) : 20;
  const double grid_height = kCell * static_cast<double>(std::max<std::size_t>(1, n_rows));
  const Box box{.left = left,
                .top = kTop,
                .right = left + cell_width * static_cast<double>(std::max<std::size_t>(1, n_cols)),
                .bottom = kTop + grid_height};
  const int height = static_cast<int>(std::ceil(std::max(box.bottom + labels_below + 36, kTop + kScale + 56)));

  const auto label = [&](double v) { return tick_text(v, chart.percent); };
  const std::string desc =
      fmt::format("Heatmap. Rows ({}): {}. Columns ({}): {}. Colour: {} to {}.",
                  chart.y_label.empty() ? "y" : chart.y_label, join(chart.rows),
                  chart.x_label.empty() ? "x" : chart.x_label, join(chart.columns), label(chart.min), label(chart.max));
  std::string out = open_svg(name, kWidth, height, chart.title, desc);
  out += fmt::format(
      "<defs>\n<pattern id=\"{0}-hatch\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\">\n"
      "<rect width=\"6\" height=\"6\" fill=\"#dddddd\"/>\n"
      "<path d=\"M-1 1 L1 -1 M0 6 L6 0 M5 7 L7 5\" stroke=\"#999999\" stroke-width=\"1\"/>\n</pattern>\n"
      "<linearGradient id=\"{0}-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n",
      name);
  for (std::size_t i = 0; i < kViridis.size(); ++i)
    out += fmt::format("<stop offset=\"{}\" stop-color=\"{}\"/>\n", trimmed(static_cast<double>(i) / 8, 3),
                       viridis(static_cast<double>(i) / 8));
  out += "</linearGradient>\n</defs>\n";

  // Values print inside the cells only when every one fits: a grid where some cells show
  // their value and others not reads as if the others were missing.
  const auto cell_text = [&](double v) { return chart.percent ? trimmed(v * 100, 1) + "%" : trimmed(v, 2); };
  bool values_fit = true;
  for (const auto& row : chart.values)
    for (const double v : row)
      values_fit = values_fit && (std::isnan(v) || text_width(cell_text(v), 10) <= cell_width - 4);
  bool any_not_run = false;
  for (std::size_t r = 0; r < n_rows; ++r) {
    const double top = box.top + kCell * static_cast<double>(r);
    out += text(box.left - 6, top + kCell / 2 + 4, chart.rows[r], "end");
    for (std::size_t c = 0; c < n_cols; ++c) {
      const double v = chart.values[r][c];
      const double cell_left = box.left + cell_width * static_cast<double>(c);
      const std::string where = chart.rows[r] + ", " + chart.columns[c] + ": ";
      const std::string geometry = fmt::format("x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"", px(cell_left), px(top),
                                               px(cell_width), px(kCell));
      if (std::isnan(v)) {
        any_not_run = true;
        out += with_title("rect", fmt::format("{} fill=\"url(#{}-hatch)\" stroke=\"#ffffff\"", geometry, name),
                          where + "not run");
        continue;
      }
      const double t = (v - chart.min) / (chart.max - chart.min);
      out += with_title("rect", fmt::format("{} fill=\"{}\" stroke=\"#ffffff\"", geometry, viridis(t)),
                        where + value_text(v, chart.percent));
      if (values_fit)
        out += text(cell_left + cell_width / 2, top + kCell / 2 + 3.5, cell_text(v), "middle",
                    fmt::format(" font-size=\"10\" fill=\"{}\"", dark(t) ? "#ffffff" : "#000000"));
    }
  }
  // Slanted labels need about 20 px apart not to overlap; narrower cells label every k-th column.
  const auto every = slanted ? static_cast<std::size_t>(std::ceil(20 / cell_width)) : std::size_t{1};
  for (std::size_t c = 0; c < n_cols; c += every) {
    const double at = box.left + cell_width * (static_cast<double>(c) + 0.5);
    out += slanted ? fmt::format(
                         "<text x=\"0\" y=\"0\" transform=\"translate({} {}) rotate(-40)\" "
                         "text-anchor=\"end\">{}</text>\n",
                         px(at + 4), px(box.bottom + 12), escape_html(chart.columns[c]))
                   : text(at, box.bottom + 16, chart.columns[c], "middle");
  }
  if (!chart.x_label.empty()) out += text(box.center_x(), box.bottom + labels_below + 24, chart.x_label, "middle");
  if (!chart.y_label.empty())
    out += fmt::format(
        "<text x=\"0\" y=\"0\" transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        px(box.center_y()), escape_html(chart.y_label));

  // The colour scale: a gradient bar labelled at min, midpoint and max.
  const double scale_x = kWidth - kMargin - kLegend + 16;
  out +=
      fmt::format("<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"{}\" fill=\"url(#{}-scale)\" stroke=\"#444444\"/>\n",
                  px(scale_x), px(box.top), px(kScale), name);
  for (int i = 0; i <= 2; ++i) {
    const double v = chart.min + (chart.max - chart.min) * static_cast<double>(i) / 2;
    out += text(scale_x + 20, box.top + kScale * (1 - i / 2.0) + 4, label(v), "start");
  }
  if (any_not_run) {
    out +=
        fmt::format("<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"url(#{}-hatch)\" stroke=\"#444444\"/>\n",
                    px(scale_x), px(box.top + kScale + 12), name);
    out += text(scale_x + 20, box.top + kScale + 23, "not run", "start");
  }
  if (empty) out += no_data(box);
  return out + "</svg>\n";
}

}  // namespace kvsafe::report
