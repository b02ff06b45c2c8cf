// prior_fit and the adversarial autoencoder's pictures; see prior_fit.h.
#include "tools/train/prior_fit.h"

#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "tools/io/images.h"

namespace ag::tools {

nlohmann::json PriorFit::json() const {
  return {{"mean", mean}, {"std", std}, {"within_radius_1", within1}, {"within_radius_2", within2}};
}

PriorFit prior_fit(const std::vector<float>& codes, int dim) {
  const int64_t n = dim > 0 ? int64_t(codes.size()) / dim : 0;
  if (n <= 0 || int64_t(codes.size()) != n * dim)
    throw Error(fmt::format("prior fit: {} values are not rows of {} codes", codes.size(), dim));
  PriorFit f;
  f.mean.assign(size_t(dim), 0.0);
  f.std.assign(size_t(dim), 0.0);
  int64_t in1 = 0, in2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    double r2 = 0;
    for (int d = 0; d < dim; ++d) {
      const double z = codes[size_t(i * dim + d)];
      f.mean[size_t(d)] += z / double(n);
      r2 += z * z;
    }
    in1 += r2 < 1;
    in2 += r2 < 4;
  }
  f.within1 = double(in1) / double(n);
  f.within2 = double(in2) / double(n);
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < dim; ++d) {
      const double e = codes[size_t(i * dim + d)] - f.mean[size_t(d)];
      f.std[size_t(d)] += e * e / double(n);
    }
  for (double& s : f.std) s = std::sqrt(s);
  return f;
}

namespace {

// The standard normal's quantile at p in (0, 1), by bisection on erfc (exact enough for a grid).
double normal_quantile(double p) {
  double lo = -10, hi = 10;
  for (int k = 0; k < 100; ++k) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace

PriorFit write_prior_pictures(const std::string& dir, models::AdversarialAutoencoder& model, const io::Dataset& test,
                              std::vector<std::string>& written) {
  const int dim = model.code_dim();
  std::vector<float> codes = model.codes(test.images.data(), test.n);
  std::vector<float> xy(size_t(2 * test.n), 0.0f);
  for (int64_t i = 0; i < test.n; ++i)
    for (int d = 0; d < std::min(dim, 2); ++d) xy[size_t(2 * i + d)] = codes[size_t(i * dim + d)];
  const auto path = [&](const char* file) { return (std::filesystem::path(dir) / file).string(); };
  io::write_png_rgb(path("codes.png"), io::scatter_plot(xy, test.labels, 512, 4.0f));
  written.push_back("codes.png");

  constexpr int side = 10;
  std::vector<float> grid(size_t(side * side * dim), 0.0f);
  for (int r = 0; r < side; ++r)
    for (int c = 0; c < side; ++c) {  // rows top to bottom: the second dimension from high to low
      float* z = grid.data() + (r * side + c) * dim;
      z[0] = float(normal_quantile((c + 0.5) / side));
      if (dim > 1) z[1] = float(normal_quantile((side - r - 0.5) / side));
    }
  io::TileLayout layout;
  layout.tile_rows = test.rows;
  layout.tile_cols = test.cols;
  layout.columns = side;
  io::write_png_gray(path("prior_grid.png"), io::tile_images(model.decode(grid), side * side, layout));
  written.push_back("prior_grid.png");
  return prior_fit(codes, dim);
}

}  // namespace ag::tools
