// Host-side batch preparation: the epoch's shuffle, gathering rows into a preallocated batch,
// one-hot labels, and the affine augmentation (random rescale, rotation and shift) that has no
// graph op. Every random choice is a Philox draw keyed by (seed, stream, step, index), the same
// functors the graph's random ops use, so runs are reproducible and independent of threads.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ag::models {

// order[0..n) = a permutation of 0..n-1, a pure function of (seed, stream): Fisher-Yates with
// Philox draws. The trainer uses stream = (phase, epoch).
void shuffled_order(int64_t* order, int64_t n, uint64_t seed, uint64_t stream);

// Asks the kernel to back [p, p + bytes) with 2 MB pages now (transparent huge pages,
// MADV_COLLAPSE): the batch gather takes rows from all over a large data set, and with 4 KB
// pages most rows start with a TLB miss (real MNIST's 188 MB, 150 random rows on two threads:
// 49-56 -> 35-41 us). A one-off cost (50-500 ms for 188 MB); best effort: where the kernel
// cannot (before Linux 6.1, huge pages off), the memory stays as it was. Smaller than 8 MB: nothing.
void prefer_huge_pages(const void* p, size_t bytes);

// out row r = images row rows[r], for r < count (dim floats each).
void gather_rows(float* out, const float* images, int dim, const int64_t* rows, int64_t count);

// out [count, classes]: 1 at (r, labels[rows[r]]), 0 elsewhere. Throws ag::Error on a label
// outside 0..classes-1.
void gather_one_hot(float* out, const uint8_t* labels, int classes, const int64_t* rows, int64_t count);

struct AffineRange {
  double rotate_deg = 15;  // angle uniform in [-rotate_deg, rotate_deg]
  double scale = 0.1;      // factor uniform in [1 - scale, 1 + scale]
  double shift_px = 2;     // each of dx, dy uniform in [-shift_px, shift_px]
};

// Each side x side image of `in` (count of them) rotated, rescaled about its centre and shifted,
// sampled bilinearly, zero outside. Image r's parameters are drawn from (seed, step, r).
void affine_augment(const float* in, float* out, int64_t count, int side, const AffineRange& range, uint64_t seed,
                    uint64_t step);

}  // namespace ag::models
