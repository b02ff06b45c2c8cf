// Deterministic reductions on the device: the losses (scale * sum_i F(a_i, b_i), F the CPU's
// loss-term functor), sum over everything, and sum over one axis. No atomics anywhere: the
// two-pass sums write one double per block into the context's fixed scratch and a single block
// adds those in a fixed order; the grid depends on the element count alone, so a result
// repeats bit for bit from run to run and replay to replay. Batch top-k is here too (a selection
// over the batch axis): one thread per element counts the rows of its column that rank above it.
#include <algorithm>

#include "backends/cuda/device_loops.cuh"
#include "ops/broadcast.h"
#include "ops/functors.h"
#include "ops/topk.h"

namespace ag::cuda {

namespace {

// Elements each block takes at least, so small tensors use few blocks.
constexpr int64_t min_elements_per_block = 4096;

int reduce_blocks(int64_t n) {
  return int(std::clamp<int64_t>((n + min_elements_per_block - 1) / min_elements_per_block, 1, max_reduce_blocks));
}

// What a reduction adds up, element by element: a loss term, or the element itself.
template <class F, class T>
struct LossTerm {
  F f;
  const T* a;
  const T* b;
  __device__ double operator()(int64_t i) const { return double(f(a[i], b[i])); }
};
template <class T>
struct Element {
  const T* x;
  __device__ double operator()(int64_t i) const { return double(x[i]); }
};

template <class Term>
__global__ void partial_sums(const Term term, int64_t n, double* partials) {
  __shared__ double shared[block_threads];
  double s = 0;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) s += term(i);
  const double total = block_sum(s, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

template <class T>
__global__ void finish_sum(const double* partials, int count, double scale, T* out) {
  __shared__ double shared[block_threads];
  double s = 0;
  for (int k = int(threadIdx.x); k < count; k += block_threads) s += partials[k];
  const double total = block_sum(s, shared);
  if (threadIdx.x == 0) *out = T(scale * total);
}

// out = T(scale * sum_{i < n} term(i)), on ctx.stream.
template <class T, class Term>
void reduce_to_scalar(const Term& term, int64_t n, double scale, T* out, const Context& ctx, const char* op) {
  const int blocks = reduce_blocks(n);
  partial_sums<<<blocks, block_threads, 0, ctx.stream>>>(term, n, ctx.reduce_partials);
  check_launch(op);
  finish_sum<<<1, block_threads, 0, ctx.stream>>>(ctx.reduce_partials, blocks, scale, out);
  check_launch(op);
}

template <class F, class T>
void launch_loss(const KernelCall& c, const Context& ctx) {
  const LossTerm<F, T> term{F{}, c.in[0].ptr<T>(), c.in[1].ptr<T>()};
  reduce_to_scalar(term, c.in[0].numel(), double(c.node->attrs.f[0]), c.out.ptr<T>(), ctx, op_name(c.node->op));
}

template <class F>
void loss(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_loss<F, float>(c, ctx) : launch_loss<F, double>(c, ctx);
}

template <class T>
void launch_sum(const KernelCall& c, const Context& ctx) {
  reduce_to_scalar(Element<T>{c.in[0].ptr<T>()}, c.in[0].numel(), 1.0, c.out.ptr<T>(), ctx, "sum");
}
void sum(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_sum<float>(c, ctx) : launch_sum<double>(c, ctx);
}

// ---- sum over one axis: x seen as [outer, n, inner], y as [outer, inner] -------------------

// inner == 1 (row sums): one block per row, the row split over the block's threads.
template <class T>
__global__ void sum_rows(const T* x, T* y, int64_t outer, int64_t n) {
  __shared__ double shared[block_threads];
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = x + o * n;
    double s = 0;
    for (int64_t k = threadIdx.x; k < n; k += block_threads) s += double(row[k]);
    const double total = block_sum(s, shared);
    if (threadIdx.x == 0) y[o] = T(total);
  }
}

// inner > 1: a block takes 32 neighbouring columns of one outer slice (coalesced reads) and
// splits the n rows over 8 thread rows, each adding every 8th row; the 8 partial sums of a
// column are then added in order.
constexpr int tile_columns = 32, tile_rows = 8;
template <class T>
__global__ void sum_columns(const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  __shared__ double part[tile_rows][tile_columns + 1];
  const int64_t tiles_per_slice = (inner + tile_columns - 1) / tile_columns;
  for (int64_t t = blockIdx.x; t < outer * tiles_per_slice; t += gridDim.x) {
    const int64_t o = t / tiles_per_slice, i = (t % tiles_per_slice) * tile_columns + threadIdx.x;
    double s = 0;
    if (i < inner)
      for (int64_t k = threadIdx.y; k < n; k += tile_rows) s += double(x[(o * n + k) * inner + i]);
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
      double total = 0;
      for (int r = 0; r < tile_rows; ++r) total += part[r][threadIdx.x];
      y[o * inner + i] = T(total);
    }
    __syncthreads();
  }
}

template <class T>
void launch_sum_axis(const KernelCall& c, const Context& ctx) {
  const auto [outer, n, inner] = split_at_axis(c.in[0].shape, int(c.node->attrs.i[0]));
  if (outer * inner == 0) return;
  if (inner == 1) {
    const unsigned blocks = unsigned(std::min<int64_t>(outer, max_grid_blocks));
    sum_rows<<<blocks, block_threads, 0, ctx.stream>>>(c.in[0].ptr<T>(), c.out.ptr<T>(), outer, n);
  } else {
    const int64_t tiles = outer * ((inner + tile_columns - 1) / tile_columns);
    const unsigned blocks = unsigned(std::min<int64_t>(tiles, max_grid_blocks));
    sum_columns<<<blocks, dim3(tile_columns, tile_rows), 0, ctx.stream>>>(c.in[0].ptr<T>(), c.out.ptr<T>(), outer, n,
                                                                           inner);
  }
  check_launch("sum_axis");
}
void sum_axis(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_sum_axis<float>(c, ctx) : launch_sum_axis<double>(c, ctx);
}

// log sum exp along an axis of [outer, n, inner]: one thread per output, max-shifted, summed in
// order (axes are short: class counts), as the CPU does.
template <class T>
__global__ void logsumexp_lines(const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t j = grid_start(); j < outer * inner; j += grid_stride()) {
    const T* xr = x + (j / inner) * n * inner + j % inner;
    T m = -INFINITY;
    bool nan = false;  // a NaN anywhere makes the result NaN, as on the CPU
    for (int64_t k = 0; k < n; ++k) {
      m = fn::max_(m, xr[k * inner]);
      nan = nan || isnan(double(xr[k * inner]));
    }
    double acc = 0;
    if (isfinite(double(m)))
      for (int64_t k = 0; k < n; ++k) acc += double(fn::exp_(xr[k * inner] - m));
    y[j] = nan ? T(NAN) : isfinite(double(m)) ? m + T(::log(acc)) : m;
  }
}
template <class T>
void launch_logsumexp(const KernelCall& c, const Context& ctx) {
  const auto [outer, n, inner] = split_at_axis(c.in[0].shape, int(c.node->attrs.i[0]));
  if (outer * inner == 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((outer * inner + block_threads - 1) / block_threads, max_grid_blocks));
  logsumexp_lines<<<blocks, block_threads, 0, ctx.stream>>>(c.in[0].ptr<T>(), c.out.ptr<T>(), outer, n, inner);
  check_launch("logsumexp");
}
void logsumexp(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_logsumexp<float>(c, ctx) : launch_logsumexp<double>(c, ctx);
}

// Batch top-k's mask: element (i, j) is one when fewer than k rows of column j rank above it
// (the order of ops/topk.h), else zero. O(B) reads per element, coalesced across a row's
// columns; no sort, no shared state, so every thread decides alone and the result is the CPU's
// set exactly.
template <class T>
__global__ void batch_topk_elements(const T* keys, T* out, int64_t rows, int64_t cols, int64_t k) {
  for (int64_t e = grid_start(); e < rows * cols; e += grid_stride()) {
    const int64_t i = e / cols, j = e % cols;
    const T key = keys[e];
    int64_t above = 0;
    for (int64_t r = 0; r < rows && above < k; ++r) above += topk_ranks_above(keys[r * cols + j], r, key, i) ? 1 : 0;
    out[e] = above < k ? T(1) : T(0);
  }
}
template <class T>
void launch_batch_topk(const KernelCall& c, const Context& ctx) {
  const int64_t rows = c.in[0].shape[0], cols = c.in[0].shape[1], n = rows * cols;
  if (n == 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((n + block_threads - 1) / block_threads, max_grid_blocks));
  batch_topk_elements<<<blocks, block_threads, 0, ctx.stream>>>(c.in[0].ptr<T>(), c.out.ptr<T>(), rows, cols,
                                                                c.node->attrs.i[0]);
  check_launch("batch_topk_mask");
}
void batch_topk(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_batch_topk<float>(c, ctx) : launch_batch_topk<double>(c, ctx);
}

// Batch normalisation (ops/norm.cpp): a thread per column of x [B, F], down the rows in order
// in double, as the CPU sums (the same definition; the bits may differ in the last place where
// the CPU's compiler contracts differently). The batch's mean and 1 / sqrt(var + eps) first.
template <class T>
__device__ void column_stats(const T* x, int64_t B, int64_t F, int64_t j, double eps, double& mean, double& rstd,
                             double& var) {
  double m = 0, v = 0;
  for (int64_t i = 0; i < B; ++i) m += double(x[i * F + j]);
  m /= double(B);
  for (int64_t i = 0; i < B; ++i) {
    const double d = double(x[i * F + j]) - m;
    v += d * d;
  }
  mean = m;
  var = v / double(B);
  rstd = 1.0 / sqrt(var + eps);
}
// kind 0: y = batch_norm(x, a = w, b = bias); 1: out = dw from (x, a = g); 2: out = dx from (x, a = w, b = g);
// 3: out = batch_moments(x), the mean in row 0 and the variance in row 1.
template <class T>
__global__ void batch_norm_columns(int kind, const T* x, const T* a, const T* b, T* out, int64_t B, int64_t F, double eps) {
  for (int64_t j = grid_start(); j < F; j += grid_stride()) {
    double mean, rstd, var;
    column_stats(x, B, F, j, eps, mean, rstd, var);
    if (kind == 3) {
      out[j] = T(mean);
      out[F + j] = T(var);
      continue;
    }
    if (kind == 0) {
      const double scale = rstd * double(a[j]), shift = double(b[j]);
      for (int64_t i = 0; i < B; ++i) out[i * F + j] = T((double(x[i * F + j]) - mean) * scale + shift);
      continue;
    }
    const T* g = kind == 1 ? a : b;
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < B; ++i) {
      sg += double(g[i * F + j]);
      sgx += double(g[i * F + j]) * (double(x[i * F + j]) - mean);
    }
    sgx *= rstd;
    if (kind == 1) {
      out[j] = T(sgx);
      continue;
    }
    const double scale = double(a[j]) * rstd;
    sg /= double(B);
    sgx /= double(B);
    for (int64_t i = 0; i < B; ++i) {
      const double xhat = (double(x[i * F + j]) - mean) * rstd;
      out[i * F + j] = T(scale * (double(g[i * F + j]) - sg - xhat * sgx));
    }
  }
}
template <class T>
void launch_batch_norm(int kind, const KernelCall& c, const Context& ctx) {
  const int64_t B = c.in[0].shape[0], F = c.in[0].shape[1];
  if (F == 0) return;
  const T* a = kind == 3 ? nullptr : c.in[1].ptr<T>();
  const T* b = kind == 1 || kind == 3 ? nullptr : c.in[2].ptr<T>();
  batch_norm_columns<<<grid_for(F), block_threads, 0, ctx.stream>>>(kind, c.in[0].ptr<T>(), a, b,
                                                                    c.out.ptr<T>(), B, F, kind == 3 ? 0.0 : double(c.node->attrs.f[0]));
  check_launch(kind == 0 ? "batch_norm" : kind == 1 ? "batch_norm_dw" : kind == 2 ? "batch_norm_dx" : "batch_moments");
}
template <int Kind>
void batch_norm_kind(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_batch_norm<float>(Kind, c, ctx) : launch_batch_norm<double>(Kind, c, ctx);
}

}  // namespace

void register_reduce_kernels(Launcher* k) {
#define AG_CUDA_LOSS(name, F) k[int(OpCode::name)] = loss<fn::F>;
  AG_LOSS_OPS(AG_CUDA_LOSS)
#undef AG_CUDA_LOSS
  k[int(OpCode::sum)] = sum;
  k[int(OpCode::sum_axis)] = sum_axis;
  k[int(OpCode::logsumexp)] = logsumexp;
  k[int(OpCode::batch_topk_mask)] = batch_topk;
  k[int(OpCode::batch_norm)] = batch_norm_kind<0>;
  k[int(OpCode::batch_norm_dw)] = batch_norm_kind<1>;
  k[int(OpCode::batch_norm_dx)] = batch_norm_kind<2>;
  k[int(OpCode::batch_moments)] = batch_norm_kind<3>;
}

}  // namespace ag::cuda
