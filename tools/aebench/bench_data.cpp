// Loading MNIST for a benchmark, or generating images of the same shape.
#include "tools/aebench/bench_data.h"

#include <fmt/format.h>

#include "models/data.h"
#include "tools/io/idx.h"
#include "tools/io/mnist_fetch.h"

namespace ag::bench {

namespace {

// SplitMix64: a cheap, well-mixed hash of the pixel index, enough for test images.
uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

BenchData synthetic_data(int64_t n, int dim, uint64_t seed) {
  if (n <= 0 || dim <= 0) throw Error(fmt::format("synthetic data: {} x {} is empty", n, dim));
  BenchData d;
  d.n = n;
  d.dim = dim;
  d.images.resize(size_t(n) * size_t(dim));
  d.labels.resize(size_t(n));
  const uint64_t key = mix(seed ^ 0xAEBE4C11ull);
  for (size_t i = 0; i < d.images.size(); ++i) {
    const uint64_t h = mix(key + i);
    // 205 / 256 of the pixels are background, the rest uniform in (0, 1].
    d.images[i] = (h & 0xFF) < 205 ? 0.0f : float((h >> 8) & 0xFFFF) * (1.0f / 65535.0f) + (1.0f / 65536.0f);
  }
  for (int64_t i = 0; i < n; ++i) d.labels[size_t(i)] = uint8_t(mix(key ^ uint64_t(i)) % 10);
  d.description = fmt::format("synthetic ({} x {}, seed {})", n, dim, seed);
  models::prefer_huge_pages(d.images.data(), d.images.size() * sizeof(float));  // batches gather from all over it
  return d;
}

BenchData mnist_train_data(const std::string& flag_dir) {
  io::MnistLocation where = io::locate_mnist(flag_dir);
  if (!where.note.empty()) fmt::print(stderr, "aebench: {}\n", where.note);
  io::Mnist mnist = io::load_mnist(where.dir);
  BenchData d;
  d.n = mnist.train.n;
  d.dim = int(mnist.train.image_size());
  d.images = std::move(mnist.train.images);
  d.labels = std::move(mnist.train.labels);
  d.dir = mnist.dir;
  d.description = fmt::format("{} train ({} x {}) from {}", mnist.source, d.n, d.dim, mnist.dir);
  models::prefer_huge_pages(d.images.data(), d.images.size() * sizeof(float));
  return d;
}

}  // namespace ag::bench
