// The generic CPU loops every elementwise op, loss and random fill instantiates: map, zip
// (with broadcasting), zip-reduce and fill. Split over OpenMP threads in fixed-size chunks, so
// reductions add the same partial sums in the same order whatever the thread count.
#pragma once
#include <cmath>

// glibc's vector math library (libmvec) has SIMD versions of these; declaring them `simd` lets
// the compiler call them from vectorised loops (glibc only does this itself under -ffast-math,
// which we do not want: it would drop the inf/NaN handling the losses rely on).
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__CUDACC__)
extern "C" {
float expf(float) __attribute__((simd("notinbranch")));
float logf(float) __attribute__((simd("notinbranch")));
float log1pf(float) __attribute__((simd("notinbranch")));
float tanhf(float) __attribute__((simd("notinbranch")));
float cosf(float) __attribute__((simd("notinbranch")));
float sinf(float) __attribute__((simd("notinbranch")));
double exp(double) __attribute__((simd("notinbranch")));
double log(double) __attribute__((simd("notinbranch")));
double log1p(double) __attribute__((simd("notinbranch")));
double tanh(double) __attribute__((simd("notinbranch")));
}
#endif

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "backends/backend.h"
#include "ops/broadcast.h"
#include "ops/functors.h"

namespace ag::cpu {

// Below this many elements a loop stays on one thread: waking the team costs more. (Measured
// with aebench on 2 cores: 1 << 13 took the tutorial step from 120k to ~135k samples/s against
// 1 << 15; 1 << 12 was no better.)
constexpr int64_t parallel_grain = 1 << 13;

template <class F, class T>
void map(const F f, const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > parallel_grain)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <class F, class T>
void zip(const F f, const T* a, const T* b, T* z, const Shape& sa, const Shape& sb, const Shape& sz) {
  const int64_t n = sz.numel();
  const bool a_flat = sa.numel() == n, b_flat = sb.numel() == n;
  if (a_flat && b_flat) {
#pragma omp parallel for simd schedule(static) if (n > parallel_grain)
    for (int64_t i = 0; i < n; ++i) z[i] = f(a[i], b[i]);
    return;
  }
  if (a_flat && sb.numel() == 1) {
    const T bv = b[0];
#pragma omp parallel for simd schedule(static) if (n > parallel_grain)
    for (int64_t i = 0; i < n; ++i) z[i] = f(a[i], bv);
    return;
  }
  if (sa.numel() == 1 && b_flat) {
    const T av = a[0];
#pragma omp parallel for simd schedule(static) if (n > parallel_grain)
    for (int64_t i = 0; i < n; ++i) z[i] = f(av, b[i]);
    return;
  }
  Broadcast2D bc;
  broadcast_plan(sa, sb, sz, &bc);
  const int64_t M = bc.M, N = bc.N;
  const uint8_t ma = bc.mode_a, mb = bc.mode_b;
#pragma omp parallel for schedule(static) if (n > parallel_grain)
  for (int64_t i = 0; i < M; ++i) {
    T* zr = z + i * N;
    if (ma == bc_full && mb == bc_row) {
      const T* ar = a + i * N;
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) zr[j] = f(ar[j], b[j]);
    } else if (ma == bc_full && mb == bc_col) {
      const T* ar = a + i * N;
      const T bv = b[i];
#pragma omp simd
      for (int64_t j = 0; j < N; ++j) zr[j] = f(ar[j], bv);
    } else {
      for (int64_t j = 0; j < N; ++j) zr[j] = f(a[broadcast_index(ma, i, j, N)], b[broadcast_index(mb, i, j, N)]);
    }
  }
}

// Chunking for deterministic reductions: a function of n only, never of the thread count.
struct Chunks {
  static constexpr int64_t max_chunks = 1024;
  int64_t size, count;
  explicit Chunks(int64_t n) : size(std::max<int64_t>(2048, (n + max_chunks - 1) / max_chunks)), count((n + size - 1) / size) {}
};

// sum_i F(a_i, b_i), accumulated in double within chunks, chunks added in order.
template <class F, class T>
double zip_reduce(const F f, const T* a, const T* b, int64_t n) {
  Chunks c(n);
  double partial[Chunks::max_chunks];
#pragma omp parallel for schedule(static) if (n > parallel_grain)
  for (int64_t k = 0; k < c.count; ++k) {
    const int64_t lo = k * c.size, hi = std::min(n, lo + c.size);
    T s = 0;  // within a chunk in T (vectorised), across chunks in double
#pragma omp simd reduction(+ : s)
    for (int64_t i = lo; i < hi; ++i) s += f(a[i], b[i]);
    partial[k] = double(s);
  }
  double total = 0;
  for (int64_t k = 0; k < c.count; ++k) total += partial[k];
  return total;
}

template <class T>
double sum(const T* x, int64_t n) {
  Chunks c(n);
  double partial[Chunks::max_chunks];
#pragma omp parallel for schedule(static) if (n > parallel_grain)
  for (int64_t k = 0; k < c.count; ++k) {
    const int64_t lo = k * c.size, hi = std::min(n, lo + c.size);
    T s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = lo; i < hi; ++i) s += x[i];
    partial[k] = double(s);
  }
  double total = 0;
  for (int64_t k = 0; k < c.count; ++k) total += partial[k];
  return total;
}

// y[i] = draw4(i / 4, step)[i % 4]: one Philox block for four elements.
template <class D, class T>
void fill(const D d, T* y, int64_t n, uint32_t step) {
  const int64_t groups = n / 4;
#pragma omp parallel for simd schedule(static) if (n > parallel_grain / 4)
  for (int64_t g = 0; g < groups; ++g) d.template draw4<T>(uint64_t(g), step, y + 4 * g);
  if (n % 4) {
    T last[4];
    d.template draw4<T>(uint64_t(groups), step, last);
    for (int64_t i = 4 * groups; i < n; ++i) y[i] = last[i - 4 * groups];
  }
}

// The normal draw's fill, vectorised: Box-Muller's logarithm, square root, cosine and sine for
// 64 blocks at a time through glibc's vector math (the generic fill above calls the scalar
// functions once per pair: 452 -> 98 us for a [150, 784] draw on two threads,
// BM_op/normal). The same values as NormalDraw::draw4 up to the vector functions' rounding.
template <class T>
void fill(const fn::NormalDraw d, T* y, int64_t n, uint32_t step) {
  constexpr int64_t block = 64;  // Philox blocks at a time: 128 pairs
  const int64_t groups = n / 4, blocks = (groups + block - 1) / block;
  constexpr float two_pi = 6.28318530717958647692f;
#pragma omp parallel for schedule(static) if (n > parallel_grain / 4)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t g0 = b * block, count = std::min(block, groups - g0);
    float u1[2 * block], u2[2 * block], c[2 * block], s[2 * block];
#pragma omp simd
    for (int64_t g = 0; g < count; ++g) {
      const fn::Philox4x32 r = d.bits(uint64_t(g0 + g), step);
      u1[2 * g] = fn::unit_open_left(r.c[0]);
      u2[2 * g] = fn::unit_closed_left(r.c[1]);
      u1[2 * g + 1] = fn::unit_open_left(r.c[2]);
      u2[2 * g + 1] = fn::unit_closed_left(r.c[3]);
    }
    // Separate loops: in one, GCC would merge the cosine and sine into a sincosf call, which
    // has no vector version it can use.
#pragma omp simd
    for (int64_t j = 0; j < 2 * count; ++j) {
      u1[j] = sqrtf(-2.0f * logf(u1[j]));  // the radius
      u2[j] = two_pi * u2[j];              // the angle
    }
#pragma omp simd
    for (int64_t j = 0; j < 2 * count; ++j) c[j] = u1[j] * cosf(u2[j]);
#pragma omp simd
    for (int64_t j = 0; j < 2 * count; ++j) s[j] = u1[j] * sinf(u2[j]);
    T* out = y + 4 * g0;
    for (int64_t j = 0; j < 2 * count; ++j) {
      out[2 * j] = T(d.p0) + T(d.p1) * T(c[j]);
      out[2 * j + 1] = T(d.p0) + T(d.p1) * T(s[j]);
    }
  }
  if (n % 4) {
    T last[4];
    d.template draw4<T>(uint64_t(groups), step, last);
    for (int64_t i = 4 * groups; i < n; ++i) y[i] = last[i - 4 * groups];
  }
}

}  // namespace ag::cpu
