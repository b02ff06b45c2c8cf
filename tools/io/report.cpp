// report.html: settings, metrics, loss curves as inline SVG, and the run's pictures. The
// page needs nothing but itself and the PNGs beside it, so it reads offline and archives well.
#include "tools/io/report.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "tools/io/atomic_file.h"

namespace ag::io {
namespace {

constexpr const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

std::string number(double v) { return fmt::format("{:.4g}", v); }

// A line chart of every series against the epoch (1-based), with axes, ticks and a legend.
std::string svg_chart(const std::vector<Series>& curves) {
  constexpr double width = 640, height = 320, left = 64, right = 16, top = 16, bottom = 40;
  size_t epochs = 0;
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : curves) {
    epochs = std::max(epochs, s.values.size());
    for (double v : s.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (epochs == 0 || !std::isfinite(lo)) return "<p>No loss values were recorded.</p>\n";
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) lo -= 0.5, hi += 0.5;  // a flat line still needs a range
  double pad = 0.05 * (hi - lo);
  lo -= pad, hi += pad;

  double plot_w = width - left - right, plot_h = height - top - bottom;
  auto x_of = [&](size_t i) { return left + (epochs == 1 ? plot_w / 2 : plot_w * double(i) / double(epochs - 1)); };
  auto y_of = [&](double v) { return top + plot_h * (hi - v) / (hi - lo); };

  std::string svg = fmt::format(
      "<svg width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" role=\"img\" "
      "aria-label=\"loss per epoch\">\n"
      "<rect x=\"{2}\" y=\"{3}\" width=\"{4}\" height=\"{5}\" fill=\"none\" stroke=\"#888\"/>\n",
      width, height, left, top, plot_w, plot_h);
  for (int t = 0; t <= 4; ++t) {  // value ticks with light grid lines
    double v = lo + (hi - lo) * t / 4, y = y_of(v);
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
                       "<text x=\"{3}\" y=\"{4:.1f}\" font-size=\"11\" text-anchor=\"end\">{5}</text>\n",
                       left, y, left + plot_w, left - 6, y + 4, number(v));
  }
  size_t step = std::max<size_t>(1, (epochs + 9) / 10);  // at most about ten epoch labels
  for (size_t i = 0; i < epochs; i += step)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\n", x_of(i),
                       top + plot_h + 16, i + 1);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">epoch</text>\n", left + plot_w / 2,
                     height - 6);

  for (size_t c = 0; c < curves.size(); ++c) {
    const char* colour = palette[c % std::size(palette)];
    std::string points;
    auto flush = [&] {  // a polyline per run of finite values, so a NaN leaves a gap
      if (!points.empty())
        svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", colour, points);
      points.clear();
    };
    const std::vector<double>& values = curves[c].values;
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
        flush();
        continue;
      }
      points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x_of(i), y_of(values[i]));
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n", x_of(i), y_of(values[i]), colour);
    }
    flush();
    double legend_y = top + 14 + 16 * double(c);
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"2\"/>"
                       "<text x=\"{4}\" y=\"{5}\" font-size=\"12\">{6}</text>\n",
                       left + plot_w - 150, legend_y, left + plot_w - 130, colour, left + plot_w - 124, legend_y + 4,
                       html_escape(curves[c].name));
  }
  return svg + "</svg>\n";
}

// The width and height a PNG's IHDR chunk gives (bytes 16..23 after the signature and chunk
// header), or {0, 0} for a file that is not one: the report only uses them to size the picture.
std::pair<int, int> png_size(const std::filesystem::path& path) {
  unsigned char head[24] = {};
  std::ifstream in(path, std::ios::binary);
  const char* chars = reinterpret_cast<const char*>(head);
  if (!in.read(reinterpret_cast<char*>(head), sizeof head) || std::string_view(chars + 12, 4) != "IHDR") return {0, 0};
  auto be32 = [&](int at) {
    return int(uint32_t(head[at]) << 24 | uint32_t(head[at + 1]) << 16 | uint32_t(head[at + 2]) << 8 | head[at + 3]);
  };
  return {be32(16), be32(20)};
}

// A picture's <img>: 28x28 tiles are too small to see at one screen pixel each, so a picture of
// known size is shown at the largest whole magnification up to 4 that fits the page's 900 px
// (whole, and image-rendering: pixelated, so every pixel stays a sharp square).
std::string image_tag(const Picture& picture) {
  std::string size;
  if (picture.width > 0 && picture.height > 0) {
    const int zoom = std::clamp(900 / picture.width, 1, 4);
    size = fmt::format(" width=\"{}\" height=\"{}\"", picture.width * zoom, picture.height * zoom);
  }
  return fmt::format("<img src=\"{}\" alt=\"{}\"{}>", html_escape(picture.file), html_escape(picture.caption), size);
}

std::string table(const std::vector<std::pair<std::string, std::string>>& rows) {
  if (rows.empty()) return "<p>None.</p>\n";
  std::string html = "<table>\n";
  for (const auto& [key, value] : rows)
    html += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", html_escape(key), html_escape(value));
  return html + "</table>\n";
}

}  // namespace

std::vector<Picture> standard_pictures() {
  return {{"reconstructions.png", "Test images (top) and their reconstructions (bottom)"},
          {"filters.png", "First-layer filters, each scaled to its own range"},
          {"denoising.png", "Test images (top), their corrupted copies (middle) and the reconstructions from those (bottom)"},
          {"samples.png", "Samples decoded from the prior"},
          {"interpolation.png", "Decoded interpolation between two test images in latent space"},
          {"codes.png", "The test codes coloured by digit, with the circles of radius 1 and 2 (adversarial autoencoder)"},
          {"prior_grid.png", "Images decoded over the prior: the N(0, 1) deciles of the two code dimensions"}};
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_report(const ReportData& data, const std::vector<Picture>& present) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}</title>\n<style>\n"
      "body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }}\n"
      "table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}\n"
      "th {{ background: #f4f4f4; font-weight: normal; }} .note {{ background: #fff6d8; padding: 0.5em; }}\n"
      "img {{ image-rendering: pixelated; max-width: 100%; height: auto; }}\n"
      "</style>\n</head>\n<body>\n<h1>{0}</h1>\n",
      html_escape(data.title));
  for (const std::string& note : data.notes) html += fmt::format("<p class=\"note\">{}</p>\n", html_escape(note));
  html += "<h2>Final metrics</h2>\n" + table(data.metrics);
  html += "<h2>Loss per epoch</h2>\n" + svg_chart(data.curves);
  for (const Picture& picture : present)
    html += fmt::format("<h2>{}</h2>\n<figure>{}</figure>\n", html_escape(picture.caption), image_tag(picture));
  html += "<h2>Settings</h2>\n" + table(data.settings);
  return html + "</body>\n</html>\n";
}

void write_report(const std::string& path, const ReportData& data) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  std::vector<Picture> present;
  std::error_code ec;
  for (const Picture& picture : data.pictures)
    if (std::filesystem::is_regular_file(folder / picture.file, ec)) {
      present.push_back(picture);
      std::tie(present.back().width, present.back().height) = png_size(folder / picture.file);
    }
  write_file_atomic(path, render_report(data, present));
}

}  // namespace ag::io
