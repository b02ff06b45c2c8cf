// Shuffling, row gathering, one-hot labels and the affine augmentation, all on the host.
#include "models/data.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "ops/functors.h"

namespace ag::models {

void shuffled_order(int64_t* order, int64_t n, uint64_t seed, uint64_t stream) {
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  const uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int64_t i = n - 1; i > 0; --i) {
    // 64 random bits per position: the modulo bias is below 2^-40 for any n we will meet.
    fn::Philox4x32 r(uint32_t(i), uint32_t(uint64_t(i) >> 32), uint32_t(stream), uint32_t(stream >> 32), k0, k1);
    uint64_t bits = (uint64_t(r.c[0]) << 32) | r.c[1];
    int64_t j = int64_t(bits % uint64_t(i + 1));
    std::swap(order[i], order[j]);
  }
}

void prefer_huge_pages(const void* p, size_t bytes) {
#if defined(__linux__)
  constexpr uintptr_t page = 4096;
  constexpr int collapse = 25;  // MADV_COLLAPSE (Linux 6.1), not in every libc's headers
  if (bytes < (size_t(8) << 20)) return;
  const uintptr_t begin = (uintptr_t(p) + page - 1) & ~(page - 1), end = (uintptr_t(p) + bytes) & ~(page - 1);
  void* start = reinterpret_cast<void*>(begin);
  if (madvise(start, end - begin, MADV_HUGEPAGE) == 0) (void)madvise(start, end - begin, collapse);
#else
  (void)p;
  (void)bytes;
#endif
}

// Rows come from all over a large array (cache and TLB misses): both cores fetch, for a batch
// worth splitting (the trainer's 150 x 784 gather took 0.11 ms on one thread, 8% of a step).
void gather_rows(float* out, const float* images, int dim, const int64_t* rows, int64_t count) {
#pragma omp parallel for schedule(static) if (count * dim >= 16384)
  for (int64_t r = 0; r < count; ++r)
    std::memcpy(out + r * dim, images + rows[r] * dim, sizeof(float) * size_t(dim));
}

void gather_one_hot(float* out, const uint8_t* labels, int classes, const int64_t* rows, int64_t count) {
  std::memset(out, 0, sizeof(float) * size_t(count) * size_t(classes));
  for (int64_t r = 0; r < count; ++r) {
    int label = labels[rows[r]];
    if (label >= classes)
      throw Error(fmt::format("labels: example {} has label {}, outside 0..{}", rows[r], label, classes - 1));
    out[r * classes + label] = 1.0f;
  }
}

void affine_augment(const float* in, float* out, int64_t count, int side, const AffineRange& range, uint64_t seed,
                    uint64_t step) {
  Attrs keys;  // the random ops' draw, with a stream of its own
  keys.i[0] = int64_t(seed);
  keys.i[1] = int64_t(0xAFF1E) << 20;
  keys.f[0] = -1.0f;
  keys.f[1] = 1.0f;
  const fn::UniformDraw draw(keys);
  const double pi = 3.14159265358979323846, centre = 0.5 * (side - 1);
  const int64_t pixels = int64_t(side) * side;
  for (int64_t r = 0; r < count; ++r) {
    const uint64_t at = uint64_t(r) * 4;
    const double angle = draw.draw<double>(at, uint32_t(step)) * range.rotate_deg * pi / 180.0;
    const double scale = 1.0 + draw.draw<double>(at + 1, uint32_t(step)) * range.scale;
    const double dx = draw.draw<double>(at + 2, uint32_t(step)) * range.shift_px;
    const double dy = draw.draw<double>(at + 3, uint32_t(step)) * range.shift_px;
    // Output pixel o shows input point R(-angle) (o - c - d) / scale + c: the inverse of
    // scaling and rotating about the centre c, then shifting by d.
    const double cs = std::cos(angle) / scale, sn = std::sin(angle) / scale;
    const float* src = in + r * pixels;
    float* dst = out + r * pixels;
    auto at_px = [&](int64_t y, int64_t x) -> double {
      return (x < 0 || y < 0 || x >= side || y >= side) ? 0.0 : double(src[y * side + x]);
    };
    for (int oy = 0; oy < side; ++oy)
      for (int ox = 0; ox < side; ++ox) {
        const double u = ox - centre - dx, v = oy - centre - dy;
        const double sx = cs * u + sn * v + centre, sy = -sn * u + cs * v + centre;
        const double fx = std::floor(sx), fy = std::floor(sy);
        const double wx = sx - fx, wy = sy - fy;
        const int64_t x0 = int64_t(fx), y0 = int64_t(fy);
        const double value = (1 - wy) * ((1 - wx) * at_px(y0, x0) + wx * at_px(y0, x0 + 1)) +
                             wy * ((1 - wx) * at_px(y0 + 1, x0) + wx * at_px(y0 + 1, x0 + 1));
        dst[oy * side + ox] = float(value);
      }
  }
}

}  // namespace ag::models
