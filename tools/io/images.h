// Grayscale PNG pictures of images and weights: a grid of small tiles with a 1-pixel gap,
// e.g. test images above their reconstructions, or first-layer filters. Encoded with
// stb_image_write and written atomically.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ag::io {

// A row-major grayscale picture with values in [0, 1] (0 black, 1 white).
struct GrayImage {
  int width = 0, height = 0;
  std::vector<float> pixels;  // height * width
};

enum class TileScale {
  clamp01,      // values are intensities already: clamp to [0, 1] (images, reconstructions)
  minmax_each,  // stretch each tile's own min..max to 0..1 (weight filters)
};

struct TileLayout {
  int tile_rows = 28, tile_cols = 28;  // each tile's size in pixels
  int columns = 10;                    // tiles per row of the grid; rows follow from the count
  TileScale scale = TileScale::clamp01;
  float gap_value = 0.5f;  // the 1-pixel lines between tiles: mid-grey shows on black and white
};

// `tiles` holds `count` tiles of tile_rows * tile_cols values one after another (e.g. a
// batch of images, or a weight matrix with one filter per row). For "k test images above
// their reconstructions", pass the k originals followed by the k reconstructions with
// columns = k. Non-finite values show as 0. Throws IoError on sizes that do not add up.
GrayImage tile_images(std::span<const float> tiles, int64_t count, const TileLayout& layout);

// A scatter plot of 2-D points coloured by label (0..9, ten distinct colours; other labels grey)
// on a white square of `size` pixels spanning [-extent, extent] on both axes, with the axes and
// the circles of radius 1 and 2 in grey: how an adversarial autoencoder's codes fit N(0, I).
// `xy` holds x0, y0, x1, y1, ...; points outside the square are left out. RGB, row-major.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<unsigned char> rgb;  // height * width * 3
};
RgbImage scatter_plot(std::span<const float> xy, std::span<const uint8_t> labels, int size, float extent);
void write_png_rgb(const std::string& path, const RgbImage& image);

// PNG bytes of an 8-bit grayscale picture (value * 255, rounded).
std::string encode_png_gray(const GrayImage& image);
void write_png_gray(const std::string& path, const GrayImage& image);
void write_png_gray(const std::string& path, std::span<const float> pixels, int width, int height);

}  // namespace ag::io
