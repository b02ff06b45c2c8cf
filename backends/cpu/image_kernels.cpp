// Image kernels on the CPU (ops/image.h has the geometry).
//
// The three convolutions are matrix products over unfolded images ("im2col"): image n's patches
// become the columns of cols [C kh kw, oh ow], and with the filters seen as a matrix
// W [F, C kh kw] (conv_transpose2d's [C_in, C_out, kh, kw] is the same matrix):
//   conv2d              y_n = W cols_n (+ b)                     one product per image
//   conv_transpose2d    x_n = fold(W^T y_n) (+ b)                one product, then the adjoint of unfolding
//   conv2d_filter_grad  W   = sum_n y_n cols_n^T                 summed in a fixed order (below)
// Images are spread over threads, one single-threaded OpenBLAS product each, so a result does
// not depend on how many threads run it; the filter gradient sums fixed groups of images, then
// the groups in order, so it does not either. docs/benchmarks.md has the measurement behind
// this choice (against oneDNN's direct convolutions).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu/loops.h"
#include "ops/image.h"

namespace ag::cpu {

namespace {

// C = op(A) op(B) + beta C, row-major, on the calling thread's OpenBLAS.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b,
          int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

// Whether the unfolded image is the image itself (1x1 filters, stride 1, no padding).
bool unfold_is_identity(const ConvGeometry& g) { return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0; }

// The columns of one image x [c, h, w]: cols[(c, u, v), (i, j)] = x[c, i s - p + u, j s - p + v], 0 outside.
template <class T>
void unfold(const ConvGeometry& g, const T* x, T* cols) {
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t u = 0; u < g.kh; ++u)
      for (int64_t v = 0; v < g.kw; ++v) {
        const T* plane = x + c * g.image_plane();
        T* row = cols + ((c * g.kh + u) * g.kw + v) * g.map_plane();
        // Output columns j whose input column j s - p + v lies inside [0, w).
        const int64_t j0 = std::clamp<int64_t>((g.pad - v + g.stride - 1) / g.stride, 0, g.ow);
        const int64_t j1 = std::clamp<int64_t>((g.w + g.pad - v + g.stride - 1) / g.stride, j0, g.ow);
        for (int64_t i = 0; i < g.oh; ++i) {
          T* out = row + i * g.ow;
          const int64_t r = i * g.stride - g.pad + u;
          if (r < 0 || r >= g.h) {
            std::fill(out, out + g.ow, T(0));
            continue;
          }
          const T* in = plane + r * g.w;
          const int64_t shift = v - g.pad;
          std::fill(out, out + j0, T(0));
          if (g.stride == 1) std::copy(in + j0 + shift, in + j1 + shift, out + j0);
          else
            for (int64_t j = j0; j < j1; ++j) out[j] = in[j * g.stride + shift];
          std::fill(out + j1, out + g.ow, T(0));
        }
      }
}

// The adjoint of unfold: x [c, h, w] += every column entry at the position it was read from.
template <class T>
void fold_add(const ConvGeometry& g, const T* cols, T* x) {
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t u = 0; u < g.kh; ++u)
      for (int64_t v = 0; v < g.kw; ++v) {
        T* plane = x + c * g.image_plane();
        const T* row = cols + ((c * g.kh + u) * g.kw + v) * g.map_plane();
        const int64_t j0 = std::clamp<int64_t>((g.pad - v + g.stride - 1) / g.stride, 0, g.ow);
        const int64_t j1 = std::clamp<int64_t>((g.w + g.pad - v + g.stride - 1) / g.stride, j0, g.ow);
        for (int64_t i = 0; i < g.oh; ++i) {
          const int64_t r = i * g.stride - g.pad + u;
          if (r < 0 || r >= g.h) continue;
          const T* in = row + i * g.ow;
          T* out = plane + r * g.w;
          const int64_t shift = v - g.pad;
          for (int64_t j = j0; j < j1; ++j) out[j * g.stride + shift] += in[j];
        }
      }
}

// A per-thread scratch buffer that only grows.
template <class T>
T* scratch(size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// Every row of a [rows, len] block set to its channel's bias (or zero).
template <class T>
void fill_rows(T* out, int64_t rows, int64_t len, const T* bias) {
  for (int64_t r = 0; r < rows; ++r) std::fill(out + r * len, out + (r + 1) * len, bias ? bias[r] : T(0));
}

template <class T>
void conv2d(const KernelCall& c) {
  const ConvGeometry g = conv_geometry(c.in[0].shape, c.in[1].shape, c.out.shape, c.node->attrs);
  const T *x = c.in[0].ptr<T>(), *w = c.in[1].ptr<T>(), *b = c.nin == 3 ? c.in[2].ptr<T>() : nullptr;
  T* y = c.out.ptr<T>();
  const bool identity = unfold_is_identity(g);
#pragma omp parallel for schedule(static) if (g.n > 1)
  for (int64_t n = 0; n < g.n; ++n) {
    const T* xn = x + n * g.c * g.image_plane();
    T* yn = y + n * g.f * g.map_plane();
    const T* cols = xn;
    if (!identity) {
      T* buf = scratch<T>(size_t(g.patch() * g.map_plane()));
      unfold(g, xn, buf);
      cols = buf;
    }
    fill_rows(yn, g.f, g.map_plane(), b);
    gemm(false, false, g.f, g.map_plane(), g.patch(), w, g.patch(), cols, g.map_plane(), T(1), yn, g.map_plane());
  }
}

template <class T>
void conv_transpose2d(const KernelCall& c) {
  const ConvGeometry g = conv_geometry(c.out.shape, c.in[1].shape, c.in[0].shape, c.node->attrs);
  const T *y = c.in[0].ptr<T>(), *w = c.in[1].ptr<T>(), *b = c.nin == 3 ? c.in[2].ptr<T>() : nullptr;
  T* x = c.out.ptr<T>();
  const bool identity = unfold_is_identity(g);
#pragma omp parallel for schedule(static) if (g.n > 1)
  for (int64_t n = 0; n < g.n; ++n) {
    const T* yn = y + n * g.f * g.map_plane();
    T* xn = x + n * g.c * g.image_plane();
    fill_rows(xn, g.c, g.image_plane(), b);
    if (identity) {
      gemm(true, false, g.c, g.map_plane(), g.f, w, g.c, yn, g.map_plane(), T(1), xn, g.map_plane());
      continue;
    }
    T* cols = scratch<T>(size_t(g.patch() * g.map_plane()));
    gemm(true, false, g.patch(), g.map_plane(), g.f, w, g.patch(), yn, g.map_plane(), T(0), cols, g.map_plane());
    fold_add(g, cols, xn);
  }
}

// Images per partial sum of the filter gradient: fixed, so the sum's order is too.
constexpr int64_t filter_grad_group = 8;

template <class T>
void filter_grad(const KernelCall& c) {
  const ConvGeometry g = conv_geometry(c.in[0].shape, c.out.shape, c.in[1].shape, c.node->attrs);
  const T *x = c.in[0].ptr<T>(), *y = c.in[1].ptr<T>();
  T* out = c.out.ptr<T>();
  const int64_t size = g.f * g.patch(), groups = (g.n + filter_grad_group - 1) / filter_grad_group;
  if (g.n == 0) {
    std::fill(out, out + size, T(0));
    return;
  }
  std::vector<T> partial(size_t(groups * size));
  const bool identity = unfold_is_identity(g);
#pragma omp parallel for schedule(static) if (groups > 1)
  for (int64_t k = 0; k < groups; ++k) {
    T* acc = partial.data() + k * size;
    for (int64_t n = k * filter_grad_group; n < std::min(g.n, (k + 1) * filter_grad_group); ++n) {
      const T* xn = x + n * g.c * g.image_plane();
      const T* cols = xn;
      if (!identity) {
        T* buf = scratch<T>(size_t(g.patch() * g.map_plane()));
        unfold(g, xn, buf);
        cols = buf;
      }
      gemm(false, true, g.f, g.patch(), g.map_plane(), y + n * g.f * g.map_plane(), g.map_plane(), cols,
           g.map_plane(), n == k * filter_grad_group ? T(0) : T(1), acc, g.patch());
    }
  }
  std::copy(partial.begin(), partial.begin() + size, out);
  for (int64_t k = 1; k < groups; ++k)
    for (int64_t e = 0; e < size; ++e) out[e] += partial[size_t(k * size + e)];
}

// The arg-max of keys over window (i, j) of one plane: the first largest in row-major order,
// a NaN winning over numbers (as it would in any comparison-based max that propagates NaN).
template <class T>
int64_t window_argmax(const PoolGeometry& g, const T* keys, int64_t i, int64_t j) {
  const int64_t r0 = std::max<int64_t>(i * g.stride - g.pad, 0), r1 = std::min(i * g.stride - g.pad + g.kernel, g.h);
  const int64_t c0 = std::max<int64_t>(j * g.stride - g.pad, 0), c1 = std::min(j * g.stride - g.pad + g.kernel, g.w);
  int64_t best = r0 * g.w + c0;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t q = c0; q < c1; ++q) {
      const T k = keys[r * g.w + q], b = keys[best];
      if (k > b || (std::isnan(k) && !std::isnan(b))) best = r * g.w + q;
    }
  return best;
}

template <class T>
void max_pool(const KernelCall& c) {
  const PoolGeometry g = pool_geometry(c.in[0].shape, c.out.shape, c.node->attrs);
  const T *keys = c.in[0].ptr<T>(), *values = c.in[1].ptr<T>();
  T* out = c.out.ptr<T>();
#pragma omp parallel for schedule(static) if (c.out.numel() > cpu::parallel_grain)
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j)
        out[(p * g.oh + i) * g.ow + j] = values[p * g.h * g.w + window_argmax(g, keys + p * g.h * g.w, i, j)];
}

template <class T>
void max_unpool(const KernelCall& c) {
  const PoolGeometry g = pool_geometry(c.in[0].shape, c.in[1].shape, c.node->attrs);
  const T *keys = c.in[0].ptr<T>(), *grad = c.in[1].ptr<T>();
  T* out = c.out.ptr<T>();
#pragma omp parallel for schedule(static) if (c.out.numel() > cpu::parallel_grain)
  for (int64_t p = 0; p < g.planes; ++p) {
    T* plane = out + p * g.h * g.w;
    std::fill(plane, plane + g.h * g.w, T(0));
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j)
        plane[window_argmax(g, keys + p * g.h * g.w, i, j)] += grad[(p * g.oh + i) * g.ow + j];
  }
}

template <class T>
void upsample(const KernelCall& c) {
  const int64_t s = c.node->attrs.i[0], planes = c.in[0].shape[0] * c.in[0].shape[1];
  const int64_t h = c.in[0].shape[2], w = c.in[0].shape[3];
  const T* x = c.in[0].ptr<T>();
  T* y = c.out.ptr<T>();
#pragma omp parallel for schedule(static) if (c.out.numel() > cpu::parallel_grain)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r < h * s; ++r) {
      const T* in = x + (p * h + r / s) * w;
      T* out = y + (p * h * s + r) * w * s;
      for (int64_t q = 0; q < w * s; ++q) out[q] = in[q / s];
    }
}

template <class T>
void sum_pool(const KernelCall& c) {
  const int64_t s = c.node->attrs.i[0], planes = c.out.shape[0] * c.out.shape[1];
  const int64_t oh = c.out.shape[2], ow = c.out.shape[3], w = ow * s;
  const T* x = c.in[0].ptr<T>();
  T* y = c.out.ptr<T>();
#pragma omp parallel for schedule(static) if (c.in[0].numel() > cpu::parallel_grain)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        T acc = 0;
        for (int64_t a = 0; a < s; ++a)
          for (int64_t b = 0; b < s; ++b) acc += x[(p * oh * s + i * s + a) * w + j * s + b];
        y[(p * oh + i) * ow + j] = acc;
      }
}

}  // namespace

void conv2d_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? conv2d<float>(c) : conv2d<double>(c); }
void conv_transpose2d_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? conv_transpose2d<float>(c) : conv_transpose2d<double>(c);
}
void conv2d_filter_grad_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? filter_grad<float>(c) : filter_grad<double>(c);
}
void max_pool2d_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? max_pool<float>(c) : max_pool<double>(c); }
void max_unpool2d_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? max_unpool<float>(c) : max_unpool<double>(c);
}
void upsample_nearest2d_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? upsample<float>(c) : upsample<double>(c);
}
void sum_pool2d_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? sum_pool<float>(c) : sum_pool<double>(c); }

}  // namespace ag::cpu
