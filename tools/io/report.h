// A training run's report.html: one self-contained page readable offline (no scripts, no
// external resources), with the settings, the final metrics, the loss curves drawn as inline
// SVG and the PNG pictures written next to it. Every string is HTML-escaped.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ag::io {

struct Series {
  std::string name;            // legend entry, e.g. "train loss"
  std::vector<double> values;  // one per epoch; non-finite values leave a gap in the line
};

struct Picture {
  std::string file;     // a file name next to report.html
  std::string caption;
  int width = 0, height = 0;  // its pixels when known (write_report reads them): shown magnified
};

// The pictures the tools write, in the order a report shows them.
std::vector<Picture> standard_pictures();

struct ReportData {
  std::string title = "aegraph run";
  std::vector<std::pair<std::string, std::string>> settings;  // shown as a table, in order
  std::vector<std::pair<std::string, std::string>> metrics;   // final metrics, formatted by the caller
  std::vector<Series> curves;  // drawn together, e.g. {"train loss", ...}, {"test loss", ...}
  std::vector<Picture> pictures = standard_pictures();  // only those present beside the report are shown
  std::vector<std::string> notes;  // e.g. "data: fell back to Fashion-MNIST"
};

// The page as a string; `present` lists the pictures to show.
std::string render_report(const ReportData& data, const std::vector<Picture>& present);
// Renders with the pictures of `data` that exist in the folder of `path`, written atomically.
void write_report(const std::string& path, const ReportData& data);

// "&lt;" and friends for & < > " '.
std::string html_escape(std::string_view text);

}  // namespace ag::io
