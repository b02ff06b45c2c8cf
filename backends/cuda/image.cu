// The image ops on the device (NCHW; semantics and geometry: ops/image.cpp, ops/image.h).
// Direct kernels, every one deterministic and free of atomics: conv2d and conv_transpose2d take
// one thread per output element and gather their sum (the transpose walks only the filter taps
// whose stride divides the offset); conv2d_filter_grad takes one block per filter weight, whose
// threads stride over the n * oh * ow terms and add their parts in a fixed-order block sum (in
// double, as the reductions do: these sums are long); max_unpool2d gathers, one thread per image
// element, over the windows that contain it, in window order, rather than scattering. Nothing
// here allocates. cuDNN, or im2col + cuBLAS, would likely be faster for large layers; that choice
// is left until a measurement on a GPU can make it.
#include "backends/cuda/device_loops.cuh"
#include "ops/image.h"

namespace ag::cuda {

namespace {

// The plain numbers of a geometry, for the kernels (the structs' helpers are host code).
struct Conv {
  int64_t n, c, h, w, f, oh, ow, kh, kw, stride, pad;
};
Conv conv_of(const ConvGeometry& g) {
  return Conv{g.n, g.c, g.h, g.w, g.f, g.oh, g.ow, g.kh, g.kw, g.stride, g.pad};
}

__device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// ---- conv2d: y [n, f, oh, ow] from x [n, c, h, w], w [f, c, kh, kw], b [f] -----------------

template <class T>
__global__ void conv2d_kernel(const Conv g, const T* x, const T* wt, const T* bias, T* y, int64_t total) {
  for (int64_t k = grid_start(); k < total; k += grid_stride()) {
    const int64_t j = k % g.ow, i = (k / g.ow) % g.oh, f = (k / (g.ow * g.oh)) % g.f, n = k / (g.ow * g.oh * g.f);
    const int64_t top = i * g.stride - g.pad, left = j * g.stride - g.pad;
    // The filter taps that land inside the image.
    const int64_t u0 = max64(0, -top), u1 = min64(g.kh, g.h - top);
    const int64_t v0 = max64(0, -left), v1 = min64(g.kw, g.w - left);
    T acc = 0;
    for (int64_t c = 0; c < g.c; ++c) {
      const T* xp = x + (n * g.c + c) * g.h * g.w;
      const T* wp = wt + (f * g.c + c) * g.kh * g.kw;
      for (int64_t u = u0; u < u1; ++u)
        for (int64_t v = v0; v < v1; ++v) acc += wp[u * g.kw + v] * xp[(top + u) * g.w + left + v];
    }
    y[k] = bias ? acc + bias[f] : acc;
  }
}

template <class T>
void launch_conv2d(const KernelCall& c, const Context& ctx) {
  const int64_t total = c.out.numel();
  if (total == 0) return;
  const Conv g = conv_of(conv_geometry(c.in[0].shape, c.in[1].shape, c.out.shape, c.node->attrs));
  const T* bias = c.nin == 3 ? c.in[2].ptr<T>() : nullptr;
  conv2d_kernel<<<grid_for(total), block_threads, 0, ctx.stream>>>(g, c.in[0].ptr<T>(), c.in[1].ptr<T>(), bias,
                                                                   c.out.ptr<T>(), total);
  check_launch("conv2d");
}
void conv2d(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_conv2d<float>(c, ctx) : launch_conv2d<double>(c, ctx);
}

// ---- conv_transpose2d: x [n, c, h, w] from y [n, f, oh, ow], w [f, c, kh, kw], b [c] ---------
// x[n, c, r, q] = b[c] + sum of w[f, c, u, v] y[n, f, i, j] over r + p - u = i s, q + p - v = j s,
// i, j inside the map: u runs over the taps congruent to r + p modulo s, i = (r + p - u) / s
// falling as u rises (from above the map, where it is skipped, to below 0, where it stops).

template <class T>
__global__ void conv_transpose2d_kernel(const Conv g, const T* y, const T* wt, const T* bias, T* x, int64_t total) {
  for (int64_t k = grid_start(); k < total; k += grid_stride()) {
    const int64_t q = k % g.w, r = (k / g.w) % g.h, c = (k / (g.w * g.h)) % g.c, n = k / (g.w * g.h * g.c);
    const int64_t rp = r + g.pad, qp = q + g.pad;
    T acc = 0;
    for (int64_t u = rp % g.stride; u < g.kh && u <= rp; u += g.stride) {
      const int64_t i = (rp - u) / g.stride;
      if (i >= g.oh) continue;
      for (int64_t v = qp % g.stride; v < g.kw && v <= qp; v += g.stride) {
        const int64_t j = (qp - v) / g.stride;
        if (j >= g.ow) continue;
        const T* wp = wt + (c * g.kh + u) * g.kw + v;        // w[0, c, u, v], f stride c kh kw
        const T* yp = y + (n * g.f * g.oh + i) * g.ow + j;  // y[n, 0, i, j], f stride oh ow
        for (int64_t f = 0; f < g.f; ++f) acc += wp[f * g.c * g.kh * g.kw] * yp[f * g.oh * g.ow];
      }
    }
    x[k] = bias ? acc + bias[c] : acc;
  }
}

template <class T>
void launch_conv_transpose2d(const KernelCall& c, const Context& ctx) {
  const int64_t total = c.out.numel();
  if (total == 0) return;
  const Conv g = conv_of(conv_geometry(c.out.shape, c.in[1].shape, c.in[0].shape, c.node->attrs));
  const T* bias = c.nin == 3 ? c.in[2].ptr<T>() : nullptr;
  conv_transpose2d_kernel<<<grid_for(total), block_threads, 0, ctx.stream>>>(g, c.in[0].ptr<T>(), c.in[1].ptr<T>(),
                                                                             bias, c.out.ptr<T>(), total);
  check_launch("conv_transpose2d");
}
void conv_transpose2d(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_conv_transpose2d<float>(c, ctx) : launch_conv_transpose2d<double>(c, ctx);
}

// ---- conv2d_filter_grad: W [f, c, kh, kw] = sum_{n, i, j} y[n, f, i, j] x[n, c, i s - p + u, j s - p + v]
// One block per weight (grid-stride over the weights); its threads take every block_threads-th
// term of the n * oh * ow, in double, and block_sum adds the parts in a fixed order.

template <class T>
__global__ void filter_grad_kernel(const Conv g, const T* x, const T* y, T* wt, int64_t weights) {
  __shared__ double shared[block_threads];
  const int64_t plane = g.oh * g.ow, terms = g.n * plane;
  for (int64_t o = blockIdx.x; o < weights; o += gridDim.x) {
    const int64_t v = o % g.kw, u = (o / g.kw) % g.kh, c = (o / (g.kw * g.kh)) % g.c, f = o / (g.kw * g.kh * g.c);
    double s = 0;
    for (int64_t t = threadIdx.x; t < terms; t += block_threads) {
      const int64_t n = t / plane, ij = t - n * plane, i = ij / g.ow, j = ij - i * g.ow;
      const int64_t r = i * g.stride - g.pad + u, q = j * g.stride - g.pad + v;
      if (r < 0 || r >= g.h || q < 0 || q >= g.w) continue;
      s += double(y[(n * g.f + f) * plane + ij]) * double(x[((n * g.c + c) * g.h + r) * g.w + q]);
    }
    const double total = block_sum(s, shared);
    if (threadIdx.x == 0) wt[o] = T(total);
  }
}

template <class T>
void launch_filter_grad(const KernelCall& c, const Context& ctx) {
  const int64_t weights = c.out.numel();
  if (weights == 0) return;
  const Conv g = conv_of(conv_geometry(c.in[0].shape, c.out.shape, c.in[1].shape, c.node->attrs));
  const unsigned blocks = unsigned(weights < max_grid_blocks ? weights : max_grid_blocks);
  filter_grad_kernel<<<blocks, block_threads, 0, ctx.stream>>>(g, c.in[0].ptr<T>(), c.in[1].ptr<T>(),
                                                               c.out.ptr<T>(), weights);
  check_launch("conv2d_filter_grad");
}
void conv2d_filter_grad(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_filter_grad<float>(c, ctx) : launch_filter_grad<double>(c, ctx);
}

// ---- max pooling by keys, and its adjoint -------------------------------------------------

struct Pool {
  int64_t planes, h, w, oh, ow, kernel, stride, pad;
};
Pool pool_of(const PoolGeometry& g) { return Pool{g.planes, g.h, g.w, g.oh, g.ow, g.kernel, g.stride, g.pad}; }

// The position (r * w + q within the plane) of window (i, j)'s largest key: the window clipped
// to the image, walked in row-major order from its first position, a later key taken when it
// is greater, or when it is NaN and the best so far is not (so the first NaN wins, as in
// PyTorch). Never empty: the shape rule keeps padding <= kernel / 2.
template <class T>
__device__ int64_t window_argmax(const Pool& g, const T* keys, int64_t i, int64_t j) {
  const int64_t top = i * g.stride - g.pad, left = j * g.stride - g.pad;
  const int64_t r0 = max64(top, 0), r1 = min64(top + g.kernel, g.h);
  const int64_t q0 = max64(left, 0), q1 = min64(left + g.kernel, g.w);
  int64_t at = r0 * g.w + q0;
  T best = keys[at];
  bool best_nan = isnan(double(best));
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t q = q0; q < q1; ++q) {
      const T key = keys[r * g.w + q];
      if (key > best || (!best_nan && isnan(double(key)))) {
        best = key;
        best_nan = isnan(double(key));
        at = r * g.w + q;
      }
    }
  return at;
}

// out [planes, oh, ow] = values at each window's arg-max of keys.
template <class T>
__global__ void max_pool_kernel(const Pool g, const T* keys, const T* values, T* out, int64_t total) {
  for (int64_t k = grid_start(); k < total; k += grid_stride()) {
    const int64_t j = k % g.ow, i = (k / g.ow) % g.oh, plane = k / (g.ow * g.oh);
    const int64_t base = plane * g.h * g.w;
    out[k] = values[base + window_argmax(g, keys + base, i, j)];
  }
}

template <class T>
void launch_max_pool(const KernelCall& c, const Context& ctx) {
  const int64_t total = c.out.numel();
  if (total == 0) return;
  const Pool g = pool_of(pool_geometry(c.in[0].shape, c.out.shape, c.node->attrs));
  max_pool_kernel<<<grid_for(total), block_threads, 0, ctx.stream>>>(g, c.in[0].ptr<T>(), c.in[1].ptr<T>(),
                                                                     c.out.ptr<T>(), total);
  check_launch("max_pool2d_at");
}
void max_pool2d_at(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_max_pool<float>(c, ctx) : launch_max_pool<double>(c, ctx);
}

// out [planes, h, w]: each image element gathers g of the windows whose arg-max it is, over
// the windows that contain it (i s - p <= r < i s - p + kernel) in increasing (i, j), which is
// the order a scatter over the windows adds them in.
template <class T>
__global__ void max_unpool_kernel(const Pool g, const T* keys, const T* grad, T* out, int64_t total) {
  for (int64_t k = grid_start(); k < total; k += grid_stride()) {
    const int64_t q = k % g.w, r = (k / g.w) % g.h, plane = k / (g.w * g.h);
    const int64_t rp = r + g.pad, qp = q + g.pad, here = r * g.w + q;
    // i s <= r + p and i s > r + p - kernel.
    const int64_t i0 = rp - g.kernel + 1 <= 0 ? 0 : (rp - g.kernel + g.stride) / g.stride;
    const int64_t i1 = min64(rp / g.stride, g.oh - 1);
    const int64_t j0 = qp - g.kernel + 1 <= 0 ? 0 : (qp - g.kernel + g.stride) / g.stride;
    const int64_t j1 = min64(qp / g.stride, g.ow - 1);
    const T* kp = keys + plane * g.h * g.w;
    const T* gp = grad + plane * g.oh * g.ow;
    T acc = 0;
    for (int64_t i = i0; i <= i1; ++i)
      for (int64_t j = j0; j <= j1; ++j)
        if (window_argmax(g, kp, i, j) == here) acc += gp[i * g.ow + j];
    out[k] = acc;
  }
}

template <class T>
void launch_max_unpool(const KernelCall& c, const Context& ctx) {
  const int64_t total = c.out.numel();
  if (total == 0) return;
  const Pool g = pool_of(pool_geometry(c.out.shape, c.in[1].shape, c.node->attrs));
  max_unpool_kernel<<<grid_for(total), block_threads, 0, ctx.stream>>>(g, c.in[0].ptr<T>(), c.in[1].ptr<T>(),
                                                                       c.out.ptr<T>(), total);
  check_launch("max_unpool2d");
}
void max_unpool2d(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_max_unpool<float>(c, ctx) : launch_max_unpool<double>(c, ctx);
}

// ---- nearest upsampling and the block sum -------------------------------------------------

// y [planes, h s, w s] = x [planes, h, w] at (r / s, q / s).
template <class T>
__global__ void upsample_kernel(const T* x, T* y, int64_t h, int64_t w, int64_t scale, int64_t total) {
  const int64_t oh = h * scale, ow = w * scale;
  for (int64_t k = grid_start(); k < total; k += grid_stride()) {
    const int64_t q = k % ow, r = (k / ow) % oh, plane = k / (ow * oh);
    y[k] = x[(plane * h + r / scale) * w + q / scale];
  }
}

template <class T>
void launch_upsample(const KernelCall& c, const Context& ctx) {
  const int64_t total = c.out.numel();
  if (total == 0) return;
  const Shape& s = c.in[0].shape;
  upsample_kernel<<<grid_for(total), block_threads, 0, ctx.stream>>>(c.in[0].ptr<T>(), c.out.ptr<T>(), s[2], s[3],
                                                                     c.node->attrs.i[0], total);
  check_launch("upsample_nearest2d");
}
void upsample_nearest2d(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_upsample<float>(c, ctx) : launch_upsample<double>(c, ctx);
}

// y [planes, h / s, w / s]: the sum of each s x s block of x, row by row, in T.
template <class T>
__global__ void sum_pool_kernel(const T* x, T* y, int64_t h, int64_t w, int64_t scale, int64_t total) {
  const int64_t oh = h / scale, ow = w / scale;
  for (int64_t k = grid_start(); k < total; k += grid_stride()) {
    const int64_t q = k % ow, r = (k / ow) % oh, plane = k / (ow * oh);
    const T* xp = x + (plane * h + r * scale) * w + q * scale;
    T acc = 0;
    for (int64_t a = 0; a < scale; ++a)
      for (int64_t b = 0; b < scale; ++b) acc += xp[a * w + b];
    y[k] = acc;
  }
}

template <class T>
void launch_sum_pool(const KernelCall& c, const Context& ctx) {
  const int64_t total = c.out.numel();
  if (total == 0) return;
  const Shape& s = c.in[0].shape;
  sum_pool_kernel<<<grid_for(total), block_threads, 0, ctx.stream>>>(c.in[0].ptr<T>(), c.out.ptr<T>(), s[2], s[3],
                                                                     c.node->attrs.i[0], total);
  check_launch("sum_pool2d");
}
void sum_pool2d(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_sum_pool<float>(c, ctx) : launch_sum_pool<double>(c, ctx);
}

}  // namespace

void register_image_kernels(Launcher* k) {
  k[int(OpCode::conv2d)] = conv2d;
  k[int(OpCode::conv_transpose2d)] = conv_transpose2d;
  k[int(OpCode::conv2d_filter_grad)] = conv2d_filter_grad;
  k[int(OpCode::max_pool2d_at)] = max_pool2d_at;
  k[int(OpCode::max_unpool2d)] = max_unpool2d;
  k[int(OpCode::upsample_nearest2d)] = upsample_nearest2d;
  k[int(OpCode::sum_pool2d)] = sum_pool2d;
}

}  // namespace ag::cuda
