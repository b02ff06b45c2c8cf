// Tiling small grayscale images into one picture and encoding it as PNG with
// stb_image_write, whose implementation is compiled here and only here.
#include "tools/io/images.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "tools/io/atomic_file.h"
#include "tools/io/io_error.h"

// stb_image_write comes in through a SYSTEM include folder, so its own warnings stay quiet
// under our -Werror.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO  // we write the bytes ourselves, atomically
#include <stb_image_write.h>

namespace ag::io {
namespace {

constexpr int64_t max_picture_pixels = int64_t(1) << 28;

float finite_or_zero(float v) { return std::isfinite(v) ? v : 0.0f; }

}  // namespace

GrayImage tile_images(std::span<const float> tiles, int64_t count, const TileLayout& layout) {
  if (layout.tile_rows <= 0 || layout.tile_cols <= 0 || layout.columns <= 0)
    throw IoError(fmt::format("tile_images: tiles of {}x{} in {} columns is not a layout", layout.tile_rows, layout.tile_cols,
                              layout.columns));
  int64_t tile_size = int64_t(layout.tile_rows) * layout.tile_cols;
  if (count <= 0 || count > int64_t(tiles.size()) / tile_size)
    throw IoError(fmt::format("tile_images: {} tiles of {}x{} need {} values, got {}", count, layout.tile_rows, layout.tile_cols,
                              count * tile_size, tiles.size()));
  int64_t columns = std::min<int64_t>(layout.columns, count);
  int64_t grid_rows = (count + columns - 1) / columns;
  int64_t width = columns * (layout.tile_cols + 1) - 1;  // 1-pixel gaps between tiles only
  int64_t height = grid_rows * (layout.tile_rows + 1) - 1;
  if (width * height > max_picture_pixels)
    throw IoError(fmt::format("tile_images: a {}x{} picture is too large", width, height));

  GrayImage image;
  image.width = int(width);
  image.height = int(height);
  image.pixels.assign(size_t(width * height), layout.gap_value);
  for (int64_t t = 0; t < count; ++t) {
    const float* tile = tiles.data() + t * tile_size;
    float low = 0.0f, scale = 1.0f;
    if (layout.scale == TileScale::minmax_each) {
      float lo = INFINITY, hi = -INFINITY;
      for (int64_t i = 0; i < tile_size; ++i)
        if (std::isfinite(tile[i])) lo = std::min(lo, tile[i]), hi = std::max(hi, tile[i]);
      // A constant (or empty) tile has no range to stretch: show it mid-grey.
      if (hi > lo) low = lo, scale = 1.0f / (hi - lo);
      else low = (std::isfinite(lo) ? lo : 0.0f) - 0.5f, scale = 1.0f;
    }
    int64_t top = (t / columns) * (layout.tile_rows + 1), left = (t % columns) * (layout.tile_cols + 1);
    for (int r = 0; r < layout.tile_rows; ++r)
      for (int c = 0; c < layout.tile_cols; ++c) {
        float v = (finite_or_zero(tile[int64_t(r) * layout.tile_cols + c]) - low) * scale;
        image.pixels[size_t((top + r) * width + left + c)] = std::clamp(v, 0.0f, 1.0f);
      }
  }
  return image;
}

std::string encode_png_gray(const GrayImage& image) {
  if (image.width <= 0 || image.height <= 0 || int64_t(image.width) * image.height > max_picture_pixels ||
      image.pixels.size() != size_t(image.width) * size_t(image.height))
    throw IoError(fmt::format("PNG: a {}x{} picture cannot hold {} pixels", image.width, image.height, image.pixels.size()));
  std::vector<unsigned char> gray(image.pixels.size());
  for (size_t i = 0; i < gray.size(); ++i)
    gray[i] = (unsigned char)std::lround(std::clamp(finite_or_zero(image.pixels[i]), 0.0f, 1.0f) * 255.0f);
  std::string png;
  auto append = [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<char*>(data), size_t(size)); };
  if (!stbi_write_png_to_func(append, &png, image.width, image.height, 1, gray.data(), image.width))
    throw IoError(fmt::format("PNG: stb_image_write could not encode a {}x{} picture", image.width, image.height));
  return png;
}

void write_png_gray(const std::string& path, const GrayImage& image) {
  std::string png;
  try {
    png = encode_png_gray(image);
  } catch (const IoError& e) {
    throw IoError(fmt::format("{}: {}", path, e.what()));
  }
  write_file_atomic(path, png);
}

RgbImage scatter_plot(std::span<const float> xy, std::span<const uint8_t> labels, int size, float extent) {
  if (size <= 0 || size > 4096 || !(extent > 0) || xy.size() != 2 * labels.size())
    throw IoError(fmt::format("scatter_plot: {} coordinates and {} labels on {} pixels, extent {}", xy.size(),
                              labels.size(), size, extent));
  // Matplotlib's "tab10" colours, one per digit.
  static const unsigned char palette[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                               {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                               {188, 189, 34},  {23, 190, 207}};
  RgbImage image{size, size, std::vector<unsigned char>(size_t(size) * size_t(size) * 3, 255)};
  const float scale = float(size) / (2 * extent);
  auto put = [&](int col, int row, const unsigned char* c) {
    if (col < 0 || row < 0 || col >= size || row >= size) return;
    std::copy(c, c + 3, image.rgb.begin() + (ptrdiff_t(row) * size + col) * 3);
  };
  const unsigned char grey[3] = {190, 190, 190};
  for (int k = 0; k < size; ++k) {  // the axes, then the circles of radius 1 and 2
    put(k, size / 2, grey);
    put(size / 2, k, grey);
  }
  for (float r : {1.0f, 2.0f})
    for (int k = 0; k < 8 * size; ++k) {
      const float a = 2 * float(M_PI) * float(k) / float(8 * size);
      put(int(std::floor((r * std::cos(a) + extent) * scale)), int(std::floor((extent - r * std::sin(a)) * scale)), grey);
    }
  for (size_t i = 0; i < labels.size(); ++i) {
    const float x = xy[2 * i], y = xy[2 * i + 1];
    if (!(std::abs(x) < extent && std::abs(y) < extent)) continue;
    const unsigned char* c = labels[i] < 10 ? palette[labels[i]] : palette[7];
    const int col = int(std::floor((x + extent) * scale)), row = int(std::floor((extent - y) * scale));
    for (int dr = -1; dr <= 1; ++dr)  // a 3x3 dot
      for (int dc = -1; dc <= 1; ++dc) put(col + dc, row + dr, c);
  }
  return image;
}

void write_png_rgb(const std::string& path, const RgbImage& image) {
  if (image.width <= 0 || image.height <= 0 || image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
    throw IoError(fmt::format("{}: a {}x{} RGB picture cannot hold {} values", path, image.width, image.height, image.rgb.size()));
  std::string png;
  auto append = [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<char*>(data), size_t(size)); };
  if (!stbi_write_png_to_func(append, &png, image.width, image.height, 3, image.rgb.data(), image.width * 3))
    throw IoError(fmt::format("{}: stb_image_write could not encode a {}x{} picture", path, image.width, image.height));
  write_file_atomic(path, png);
}

void write_png_gray(const std::string& path, std::span<const float> pixels, int width, int height) {
  GrayImage image{width, height, std::vector<float>(pixels.begin(), pixels.end())};
  write_png_gray(path, image);
}

}  // namespace ag::io
