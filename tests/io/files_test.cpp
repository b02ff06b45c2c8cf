// Atomic writes, PNG pictures and the HTML report: outputs land whole, failures leave the old
// file alone, tiles are laid out with their gaps and scaling, and the report is self-contained.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "fixtures.h"
#include "tools/io/atomic_file.h"
#include "tools/io/images.h"
#include "tools/io/report.h"

using namespace ag::io;
using namespace ag::io::testing;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

size_t entries_in(const fs::path& folder) {
  return size_t(std::distance(fs::directory_iterator(folder), fs::directory_iterator()));
}

uint32_t big_endian_at(const std::string& bytes, size_t at) {
  return uint32_t(uint8_t(bytes[at])) << 24 | uint32_t(uint8_t(bytes[at + 1])) << 16 | uint32_t(uint8_t(bytes[at + 2])) << 8 |
         uint32_t(uint8_t(bytes[at + 3]));
}

}  // namespace

TEST_CASE("write_file_atomic replaces a file whole and keeps its mode", "[files]") {
  TempDir dir;
  const std::string path = dir.file("out.txt");
  write_file_atomic(path, "first");
  CHECK(read_file(path) == "first");
  ::chmod(path.c_str(), 0640);
  write_file_atomic(path, std::string(100000, 'x'));
  CHECK(read_file(path) == std::string(100000, 'x'));
  struct stat st {};
  ::stat(path.c_str(), &st);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(entries_in(dir.path()) == 1);  // no temporary file left behind
}

TEST_CASE("a failing atomic write leaves the target untouched and cleans up", "[files]") {
  TempDir dir;
  SECTION("the target is a folder that cannot be replaced") {
    fs::create_directories(dir.file("target/inside"));
    CHECK_THAT(io_error_of([&] { write_file_atomic(dir.file("target"), "data"); }), Contains(dir.file("target")));
    CHECK(fs::is_directory(dir.file("target/inside")));
    CHECK(entries_in(dir.path()) == 1);
  }
  SECTION("the folder does not exist") {
    CHECK_THAT(io_error_of([&] { write_file_atomic(dir.file("no/such/out.txt"), "data"); }),
               Contains(dir.file("no/such/out.txt")) && Contains("temporary file"));
  }
  SECTION("read_file names what is wrong") {
    CHECK_THAT(io_error_of([&] { read_file(dir.file("absent")); }), Contains(dir.file("absent")) && Contains("no such file"));
    CHECK_THAT(io_error_of([&] { read_file(dir.path().string()); }), Contains("not a regular file"));
    write_file_atomic(dir.file("big"), std::string(100, 'x'));
    CHECK_THAT(io_error_of([&] { read_file(dir.file("big"), 10); }), Contains(dir.file("big")) && Contains("100 bytes"));
  }
}

TEST_CASE("tile_images lays out tiles with 1-pixel gaps", "[images]") {
  // Two rows of three 2x2 tiles: "originals above reconstructions".
  std::vector<float> tiles(6 * 4);
  for (size_t i = 0; i < tiles.size(); ++i) tiles[i] = float(i % 4) / 3.0f;
  tiles[0] = 7.0f;  // out of range: clamped
  tiles[1] = NAN;   // not a number: shown black
  GrayImage image = tile_images(tiles, 6, {.tile_rows = 2, .tile_cols = 2, .columns = 3});
  REQUIRE(image.width == 3 * 2 + 2);
  REQUIRE(image.height == 2 * 2 + 1);
  auto at = [&](int r, int c) { return image.pixels[size_t(r * image.width + c)]; };
  CHECK(at(0, 0) == 1.0f);
  CHECK(at(0, 1) == 0.0f);
  CHECK(at(0, 2) == 0.5f);  // the gap column
  CHECK(at(2, 0) == 0.5f);  // the gap row
  CHECK(at(4, 7) == Approx(1.0f));  // last tile's last pixel: value 3/3
  CHECK(at(3, 6) == 0.0f);          // last tile's first pixel
}

TEST_CASE("filters are min-max normalised per tile", "[images]") {
  std::vector<float> filters = {-2, 0, 2, 4, /* constant tile */ 5, 5, 5, 5};
  GrayImage image = tile_images(filters, 2, {.tile_rows = 2, .tile_cols = 2, .columns = 2, .scale = TileScale::minmax_each});
  CHECK(image.pixels[0] == 0.0f);
  CHECK(image.pixels[1] == Approx(1.0f / 3));
  CHECK(image.pixels[size_t(image.width + 1)] == 1.0f);
  CHECK(image.pixels[3] == 0.5f);  // a constant tile is mid-grey
}

TEST_CASE("tile_images refuses sizes that do not add up", "[images]") {
  std::vector<float> values(10);
  CHECK_THAT(io_error_of([&] { tile_images(values, 3, {.tile_rows = 2, .tile_cols = 2}); }), Contains("need 12 values, got 10"));
  CHECK_THROWS_AS(tile_images(values, 1, {.tile_rows = 0}), IoError);
  CHECK_THROWS_AS(tile_images(values, 0, {.tile_rows = 2, .tile_cols = 2}), IoError);
}

TEST_CASE("PNGs are valid grayscale files written atomically", "[images]") {
  TempDir dir;
  const std::string path = dir.file("reconstructions.png");
  std::vector<float> pixels = {0, 0.25f, 0.5f, 1, 1, 0};
  write_png_gray(path, pixels, 3, 2);
  std::string png = read_file(path);
  REQUIRE(png.size() > 33);
  CHECK(png.substr(0, 8) == "\x89PNG\r\n\x1a\n");
  CHECK(png.substr(12, 4) == "IHDR");
  CHECK(big_endian_at(png, 16) == 3);  // width
  CHECK(big_endian_at(png, 20) == 2);  // height
  CHECK(png[24] == 8);                 // bit depth
  CHECK(png[25] == 0);                 // colour type 0: grayscale

  CHECK_THAT(io_error_of([&] { write_png_gray(path, pixels, 4, 2); }), Contains(path) && Contains("cannot hold 6 pixels"));
  CHECK(read_file(path) == png);  // the failed write left the good picture alone
}

TEST_CASE("the report is self-contained, escaped, and shows only pictures present", "[report]") {
  TempDir dir;
  const std::string path = dir.file("report.html");
  write_file_atomic(dir.file("reconstructions.png"), encode_png_gray({1, 1, {0.5f}}));
  ReportData data;
  data.title = "ae <run> & \"friends\"";
  data.settings = {{"model", "ae"}, {"lr", "0.1"}};
  data.metrics = {{"test loss", "0.0912"}};
  data.curves = {{"train loss", {0.5, 0.3, 0.2}}, {"test loss", {0.55, NAN, 0.25}}};
  data.notes = {"data: fell back to <Fashion-MNIST>"};
  write_report(path, data);
  std::string html = read_file(path);

  CHECK_THAT(html, Contains("<title>ae &lt;run&gt; &amp; &quot;friends&quot;</title>"));
  CHECK_THAT(html, Contains("fell back to &lt;Fashion-MNIST&gt;"));
  CHECK_THAT(html, Contains("<th>lr</th><td>0.1</td>") && Contains("<th>test loss</th><td>0.0912</td>"));
  CHECK_THAT(html, Contains("<svg") && Contains("<polyline") && Contains(">train loss<") && Contains(">epoch<"));
  CHECK_THAT(html, Contains("<img src=\"reconstructions.png\""));
  CHECK_THAT(html, !Contains("filters.png") && !Contains("samples.png"));
  CHECK_THAT(html, !Contains("http://") && !Contains("https://") && !Contains("<script") && !Contains("<link"));
  CHECK_THAT(html, !Contains("nan"));  // the NaN leaves a gap instead of a broken coordinate
}

TEST_CASE("the report magnifies pictures by a whole factor that fits the page", "[report]") {
  TempDir dir;
  const std::string path = dir.file("report.html");
  GrayImage tiles{289, 57, std::vector<float>(289 * 57, 0.5f)};  // 10 tiles of 28x28 above 10 more
  write_file_atomic(dir.file("reconstructions.png"), encode_png_gray(tiles));
  write_file_atomic(dir.file("filters.png"), encode_png_gray({2, 1, {0, 1}}));
  write_file_atomic(dir.file("samples.png"), "not a PNG");
  write_report(path, ReportData{});
  std::string html = read_file(path);
  CHECK_THAT(html, Contains("src=\"reconstructions.png\" alt=\"Test images (top) and their reconstructions (bottom)\" "
                            "width=\"867\" height=\"171\">"));
  CHECK_THAT(html, Contains("src=\"filters.png\" alt=\"First-layer filters, each scaled to its own range\" "
                            "width=\"8\" height=\"4\">"));   // at most 4 times
  CHECK_THAT(html, Contains("src=\"samples.png\" alt=\"Samples decoded from the prior\">"));  // no size to scale
  CHECK_THAT(html, Contains("image-rendering: pixelated"));  // square pixels, no smoothing
}

TEST_CASE("a report with no losses still renders", "[report]") {
  ReportData data;
  std::string html = render_report(data, {});
  CHECK_THAT(html, Contains("No loss values were recorded"));
  data.curves = {{"train loss", {1.0}}};  // a single epoch, a flat range
  CHECK_THAT(render_report(data, {}), Contains("<circle"));
}
