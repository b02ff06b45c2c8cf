// Reductions on the CPU: each adds in a fixed order that does not depend on the thread count,
// so a sum has the same bits on any number of threads (tested).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu/loops.h"
#include "ops/topk.h"

namespace ag::cpu {

namespace {
template <class T>
void sum_all(const KernelCall& c) { *c.out.ptr<T>() = T(cpu::sum(c.in[0].ptr<T>(), c.in[0].numel())); }


// x seen as [outer, n, inner]; each output element is summed in order over n.
template <class T>
void sum_over_axis(const KernelCall& c) {
  const auto [outer, n, inner] = split_at_axis(c.in[0].shape, int(c.node->attrs.i[0]));
  const T* x = c.in[0].ptr<T>();
  T* y = c.out.ptr<T>();
  if (inner == 1) {  // row sums: eight running sums in double (one vector), added in a fixed order
#pragma omp parallel for schedule(static) if (outer * n > cpu::parallel_grain)
    for (int64_t o = 0; o < outer; ++o) {
      const T* xr = x + o * n;
      double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; ++j) lane[j] += double(xr[k + j]);
      for (; k < n; ++k) lane[k % 8] += double(xr[k]);
      y[o] = T(((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
    }
    return;
  }
  const int64_t block = 256;  // columns per task: rows are walked in order for each column block
  const int64_t blocks = (inner + block - 1) / block;
#pragma omp parallel for collapse(2) schedule(static) if (outer * n * inner > cpu::parallel_grain)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t bi = 0; bi < blocks; ++bi) {
      const int64_t lo = bi * block, hi = std::min(inner, lo + block);
      T* yr = y + o * inner;
      for (int64_t i = lo; i < hi; ++i) yr[i] = 0;
      for (int64_t k = 0; k < n; ++k) {
        const T* xr = x + (o * n + k) * inner;
#pragma omp simd
        for (int64_t i = lo; i < hi; ++i) yr[i] += xr[i];
      }
    }
}


// log sum exp of a contiguous float row (the last axis: log_softmax over classes, a row of
// pixels), vectorised: the maximum in 16 lanes (a NaN anywhere makes the result NaN), then the
// exponentials in float through glibc's vector exp and their sum in 16 double lanes, added in
// lane order; a pure function of the row. (The strided loop below: a scalar exp per element,
// 247 us for 150 rows of 784 on two threads.)
float logsumexp_row(const float* x, int64_t n) {
  constexpr int L = 16;
  float lane_max[L];
  int lane_nan[L] = {};
  std::fill(lane_max, lane_max + L, -std::numeric_limits<float>::infinity());
  int64_t k = 0;
  for (; k + L <= n; k += L)
#pragma omp simd
    for (int j = 0; j < L; ++j) {
      lane_max[j] = std::max(lane_max[j], x[k + j]);
      lane_nan[j] |= x[k + j] != x[k + j];
    }
  float m = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (int j = 0; j < L; ++j) {
    m = std::max(m, lane_max[j]);
    nan = nan || lane_nan[j];
  }
  for (int64_t t = k; t < n; ++t) {
    m = std::max(m, x[t]);
    nan = nan || std::isnan(x[t]);
  }
  if (nan) return std::numeric_limits<float>::quiet_NaN();
  if (!std::isfinite(m)) return m;
  double acc[L] = {};
  for (k = 0; k + L <= n; k += L) {
    float e[L];
#pragma omp simd
    for (int j = 0; j < L; ++j) e[j] = fn::exp_nonpos_(x[k + j] - m);  // <= 0; below e^-87 a 0 adds nothing to a sum >= 1
#pragma omp simd
    for (int j = 0; j < L; ++j) acc[j] += double(e[j]);
  }
  for (; k < n; ++k) acc[k % L] += double(fn::exp_nonpos_(x[k] - m));
  double total = 0;
  for (int j = 0; j < L; ++j) total += acc[j];
  return m + float(std::log(total));
}

// log sum exp along an axis of [outer, n, inner], shifted by the maximum so nothing overflows.
template <class T>
void logsumexp_over_axis(const KernelCall& c) {
  const auto [outer, n, inner] = split_at_axis(c.in[0].shape, int(c.node->attrs.i[0]));
  const T* x = c.in[0].ptr<T>();
  T* y = c.out.ptr<T>();
  if constexpr (sizeof(T) == 4)
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * n > cpu::parallel_grain)
      for (int64_t o = 0; o < outer; ++o) y[o] = logsumexp_row(x + o * n, n);
      return;
    }
#pragma omp parallel for collapse(2) schedule(static) if (outer * n * inner > cpu::parallel_grain)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* xr = x + o * n * inner + i;
      T m = -std::numeric_limits<T>::infinity();
      bool nan = false;
      for (int64_t k = 0; k < n; ++k) {
        m = std::max(m, xr[k * inner]);
        nan = nan || std::isnan(xr[k * inner]);
      }
      double acc = 0;
      if (std::isfinite(m))
        for (int64_t k = 0; k < n; ++k) acc += double(fn::exp_(xr[k * inner] - m));
      y[o * inner + i] = nan ? std::numeric_limits<T>::quiet_NaN() : std::isfinite(m) ? m + T(std::log(acc)) : m;
    }
}

// Batch top-k mask: each column's k-th ranked (key, row) in the order of ops/topk.h, then one
// row-major pass writes a one where a key ranks at or above its column's k-th, else a zero.
// Small k (wta keeps 8 of 150): one row-major pass per thread over its share of the columns,
// each column's best k so far held sorted; a row ranks below every earlier one of equal key, so
// after the first k rows an element enters only when its key beats the k-th (one comparison,
// and rarely an insertion). Larger k: nth_element over each column's B entries. Both find the
// same (key, row): the order is strict. Buffers are thread-local and grow once.
constexpr int64_t topk_streamed = 32;

template <class T>
void batch_topk_columns(const KernelCall& c) {
  const int64_t rows = c.in[0].shape[0], cols = c.in[0].shape[1], k = c.node->attrs.i[0];
  const T* keys = c.in[0].ptr<T>();
  T* out = c.out.ptr<T>();
  thread_local std::vector<T> kth;
  thread_local std::vector<int64_t> kth_row;
  kth.resize(size_t(cols));
  kth_row.resize(size_t(cols));
  T* kv = kth.data();
  int64_t* kr = kth_row.data();
  const bool parallel = rows * cols > cpu::parallel_grain;
#pragma omp parallel if (parallel)
  {
    if (k <= topk_streamed) {
      const int threads = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t j0 = cols * t / threads, j1 = cols * (t + 1) / threads, width = j1 - j0;
      thread_local std::vector<T> best_key;  // [width, k], each column's best so far, best first
      thread_local std::vector<int64_t> best_row;
      best_key.resize(size_t(width * k));
      best_row.resize(size_t(width * k));
      auto insert = [&](int64_t j, int64_t filled, T key, int64_t row) {  // into column j's sorted list
        T* bk = best_key.data() + (j - j0) * k;
        int64_t* br = best_row.data() + (j - j0) * k;
        int64_t at = std::min(filled, k - 1);
        while (at > 0 && topk_ranks_above(key, row, bk[at - 1], br[at - 1])) {
          bk[at] = bk[at - 1];
          br[at] = br[at - 1];
          --at;
        }
        bk[at] = key;
        br[at] = row;
      };
      for (int64_t i = 0; i < std::min(k, rows); ++i)
        for (int64_t j = j0; j < j1; ++j) insert(j, i, keys[i * cols + j], i);
      for (int64_t j = j0; j < j1; ++j) {
        kv[j] = best_key[size_t((j - j0) * k + k - 1)];
        kr[j] = best_row[size_t((j - j0) * k + k - 1)];
      }
      for (int64_t i = k; i < rows; ++i) {
        const T* kr_row = keys + i * cols;
        for (int64_t j = j0; j < j1; ++j) {
          // A later row beats the k-th only with a larger key, or a NaN over a number.
          const T key = kr_row[j], kth_key = kv[j];
          if (!(key > kth_key || (key != key && kth_key == kth_key))) continue;
          insert(j, k, kr_row[j], i);
          kv[j] = best_key[size_t((j - j0) * k + k - 1)];
          kr[j] = best_row[size_t((j - j0) * k + k - 1)];
        }
      }
    } else {
      thread_local std::vector<int64_t> order;
      order.resize(size_t(rows));
#pragma omp for schedule(static)
      for (int64_t j = 0; j < cols; ++j) {
        for (int64_t i = 0; i < rows; ++i) order[size_t(i)] = i;
        auto above = [&](int64_t a, int64_t b) { return topk_ranks_above(keys[a * cols + j], a, keys[b * cols + j], b); };
        std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), above);
        kr[j] = order[size_t(k - 1)];
        kv[j] = keys[kr[j] * cols + j];
      }
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {  // topk_ranks_above(key, i, k-th) or the k-th itself, without branches
        const T key = keys[i * cols + j], kth_key = kv[j];
        const bool up_to = i <= kr[j], key_nan = key != key, kth_nan = kth_key != kth_key;
        const bool kept = key_nan ? (!kth_nan || up_to) : (!kth_nan && (key > kth_key || (key == kth_key && up_to)));
        out[i * cols + j] = kept ? T(1) : T(0);
      }
  }
}
#if defined(__AVX512F__)
// The float mask with AVX-512, 16 columns at a time, in time that does not depend on the data.
// Each key becomes an unsigned integer in the same order (ops/topk.h's: -0 as +0, every NaN
// one value above +inf); the column's k-th largest, t, is then found bit by bit from the top
// (the largest v with at least k keys >= v: 32 counts over the rows); a key above t is kept,
// and of the keys equal to t the first k - #(above t) rows. The same set as the scalar path's.
inline __m512i order_keys(__m512 x) {
  x = _mm512_add_ps(x, _mm512_setzero_ps());  // -0 -> +0
  const __m512i bits = _mm512_castps_si512(x), sign = _mm512_set1_epi32(int32_t(0x80000000u));
  const __mmask16 negative = _mm512_test_epi32_mask(bits, sign), nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  __m512i u = _mm512_mask_xor_epi32(_mm512_or_si512(bits, sign), negative, bits, _mm512_set1_epi32(-1));
  return _mm512_mask_mov_epi32(u, nan, _mm512_set1_epi32(-1));
}

void batch_topk_mask_avx512(const KernelCall& c) {
  const int64_t rows = c.in[0].shape[0], cols = c.in[0].shape[1], k = c.node->attrs.i[0];
  const float* keys = c.in[0].ptr<float>();
  float* out = c.out.ptr<float>();
  const int64_t blocks = (cols + 15) / 16;
#pragma omp parallel if (rows * cols > cpu::parallel_grain)
  {
    thread_local std::vector<uint32_t> store;  // the block's keys as ordered integers, a row each
    store.resize(size_t(rows) * 16);
    auto at = [&](int64_t r) { return _mm512_loadu_si512(store.data() + r * 16); };
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t j = b * 16;
      const __mmask16 lanes = cols - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - j)) - 1);
      for (int64_t r = 0; r < rows; ++r)
        _mm512_storeu_si512(store.data() + r * 16, order_keys(_mm512_maskz_loadu_ps(lanes, keys + r * cols + j)));
      const __m512i kv = _mm512_set1_epi32(int32_t(k)), one = _mm512_set1_epi32(1);
      __m512i t = _mm512_setzero_si512();
      for (int bit = 31; bit >= 0; --bit) {
        const __m512i v = _mm512_or_si512(t, _mm512_set1_epi32(int32_t(1u << bit)));
        __m512i n0 = _mm512_setzero_si512(), n1 = n0;
        int64_t r = 0;
        for (; r + 1 < rows; r += 2) {
          n0 = _mm512_mask_add_epi32(n0, _mm512_cmpge_epu32_mask(at(r), v), n0, one);
          n1 = _mm512_mask_add_epi32(n1, _mm512_cmpge_epu32_mask(at(r + 1), v), n1, one);
        }
        if (r < rows) n0 = _mm512_mask_add_epi32(n0, _mm512_cmpge_epu32_mask(at(r), v), n0, one);
        t = _mm512_mask_mov_epi32(t, _mm512_cmpge_epi32_mask(_mm512_add_epi32(n0, n1), kv), v);
      }
      __m512i above = _mm512_setzero_si512();
      for (int64_t r = 0; r < rows; ++r)
        above = _mm512_mask_add_epi32(above, _mm512_cmpgt_epu32_mask(at(r), t), above, one);
      __m512i ties_left = _mm512_sub_epi32(kv, above);  // how many keys equal to t are kept
      const __m512 ones = _mm512_set1_ps(1.0f);
      for (int64_t r = 0; r < rows; ++r) {
        const __mmask16 tie = _mm512_cmpeq_epu32_mask(at(r), t),
                        take = _mm512_cmpgt_epu32_mask(at(r), t) |
                               (tie & _mm512_cmpgt_epi32_mask(ties_left, _mm512_setzero_si512()));
        ties_left = _mm512_mask_sub_epi32(ties_left, tie, ties_left, one);
        _mm512_mask_storeu_ps(out + r * cols + j, lanes, _mm512_maskz_mov_ps(take, ones));
      }
    }
  }
}
#endif

// Batch normalisation (ops/norm.cpp), per column of x [B, F]. Columns go in blocks of 64, a
// block to a thread; within one, sums run down the rows in order, in double, so a column's
// result does not depend on the thread count. Each op finds the batch's mean and
// 1 / sqrt(var + eps) first (two passes: the mean, then the squared deviations).
constexpr int64_t norm_block = 64;

template <class T>
struct NormBlock {
  int64_t j0, w;  // first column, width
  double mean[norm_block], var[norm_block], rstd[norm_block];  // var: biased
};

template <class T>
void column_stats(const T* x, int64_t B, int64_t F, double eps, NormBlock<T>& s) {
  for (int64_t j = 0; j < s.w; ++j) s.mean[j] = s.var[j] = 0;
  for (int64_t i = 0; i < B; ++i)
#pragma omp simd
    for (int64_t j = 0; j < s.w; ++j) s.mean[j] += double(x[i * F + s.j0 + j]);
  for (int64_t j = 0; j < s.w; ++j) s.mean[j] /= double(B);
  for (int64_t i = 0; i < B; ++i)
#pragma omp simd
    for (int64_t j = 0; j < s.w; ++j) {
      const double d = double(x[i * F + s.j0 + j]) - s.mean[j];
      s.var[j] += d * d;
    }
  for (int64_t j = 0; j < s.w; ++j) {
    s.var[j] /= double(B);
    s.rstd[j] = 1.0 / std::sqrt(s.var[j] + eps);
  }
}

// Runs body(block) for each block of columns, in parallel only for large matrices: [150, 128]
// took 8.0 / 12.6 us (forward / input gradient) on one thread and 14.0 / 18.4 on two
// (bench_kernels BM_op/batch_norm*).
template <class T, class Body>
void norm_blocks(const KernelCall& c, Body body) {
  const T* x = c.in[0].ptr<T>();
  const int64_t B = c.in[0].shape[0], F = c.in[0].shape[1], blocks = (F + norm_block - 1) / norm_block;
  const double eps = c.node->attrs.f[0];  // batch_moments: 0, unused
#pragma omp parallel for schedule(static) if (B * F > 32 * cpu::parallel_grain && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    NormBlock<T> s;
    s.j0 = b * norm_block;
    s.w = std::min(norm_block, F - s.j0);
    column_stats(x, B, F, eps, s);
    body(s, x, B, F);
  }
}

template <class T>
void batch_norm_forward(const KernelCall& c) {
  const T* w = c.in[1].ptr<T>();
  const T* bias = c.in[2].ptr<T>();
  T* y = c.out.ptr<T>();
  norm_blocks<T>(c, [&](const NormBlock<T>& s, const T* x, int64_t B, int64_t F) {
    double scale[norm_block];
    for (int64_t j = 0; j < s.w; ++j) scale[j] = s.rstd[j] * double(w[s.j0 + j]);
    for (int64_t i = 0; i < B; ++i)
#pragma omp simd
      for (int64_t j = 0; j < s.w; ++j) {
        const int64_t e = i * F + s.j0 + j;
        y[e] = T((double(x[e]) - s.mean[j]) * scale[j] + double(bias[s.j0 + j]));
      }
  });
}

template <class T>
void batch_moments_rows(const KernelCall& c) {
  T* out = c.out.ptr<T>();
  norm_blocks<T>(c, [&](const NormBlock<T>& s, const T*, int64_t, int64_t F) {
    for (int64_t j = 0; j < s.w; ++j) {
      out[s.j0 + j] = T(s.mean[j]);
      out[F + s.j0 + j] = T(s.var[j]);
    }
  });
}

// Sums down the rows of g and of g * xhat: what both gradients need.
template <class T>
void gradient_sums(const NormBlock<T>& s, const T* x, const T* g, int64_t B, int64_t F, double* sg, double* sgx) {
  for (int64_t j = 0; j < s.w; ++j) sg[j] = sgx[j] = 0;
  for (int64_t i = 0; i < B; ++i)
#pragma omp simd
    for (int64_t j = 0; j < s.w; ++j) {
      const int64_t e = i * F + s.j0 + j;
      sg[j] += double(g[e]);
      sgx[j] += double(g[e]) * (double(x[e]) - s.mean[j]);
    }
  for (int64_t j = 0; j < s.w; ++j) sgx[j] *= s.rstd[j];
}

template <class T>
void batch_norm_weight_grad(const KernelCall& c) {
  const T* g = c.in[1].ptr<T>();
  T* dw = c.out.ptr<T>();
  norm_blocks<T>(c, [&](const NormBlock<T>& s, const T* x, int64_t B, int64_t F) {
    double sg[norm_block], sgx[norm_block];
    gradient_sums(s, x, g, B, F, sg, sgx);
    for (int64_t j = 0; j < s.w; ++j) dw[s.j0 + j] = T(sgx[j]);
  });
}

template <class T>
void batch_norm_input_grad(const KernelCall& c) {
  const T* w = c.in[1].ptr<T>();
  const T* g = c.in[2].ptr<T>();
  T* dx = c.out.ptr<T>();
  norm_blocks<T>(c, [&](const NormBlock<T>& s, const T* x, int64_t B, int64_t F) {
    double sg[norm_block], sgx[norm_block], scale[norm_block];
    gradient_sums(s, x, g, B, F, sg, sgx);
    for (int64_t j = 0; j < s.w; ++j) {
      scale[j] = double(w[s.j0 + j]) * s.rstd[j];
      sg[j] /= double(B);
      sgx[j] /= double(B);
    }
    for (int64_t i = 0; i < B; ++i)
#pragma omp simd
      for (int64_t j = 0; j < s.w; ++j) {
        const int64_t e = i * F + s.j0 + j;
        const double xhat = (double(x[e]) - s.mean[j]) * s.rstd[j];
        dx[e] = T(scale[j] * (double(g[e]) - sg[j] - xhat * sgx[j]));
      }
  });
}

}  // namespace

void sum_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? sum_all<float>(c) : sum_all<double>(c); }
void sum_axis_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? sum_over_axis<float>(c) : sum_over_axis<double>(c); }
void logsumexp_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? logsumexp_over_axis<float>(c) : logsumexp_over_axis<double>(c);
}
void batch_norm_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? batch_norm_forward<float>(c) : batch_norm_forward<double>(c);
}
void batch_norm_dw_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? batch_norm_weight_grad<float>(c) : batch_norm_weight_grad<double>(c);
}
void batch_norm_dx_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? batch_norm_input_grad<float>(c) : batch_norm_input_grad<double>(c);
}
void batch_moments_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? batch_moments_rows<float>(c) : batch_moments_rows<double>(c);
}
void batch_topk_kernel(const KernelCall& c) {
#if defined(__AVX512F__)
  if (c.out.dtype == DType::f32) return batch_topk_mask_avx512(c);
#endif
  c.out.dtype == DType::f32 ? batch_topk_columns<float>(c) : batch_topk_columns<double>(c);
}

}  // namespace ag::cpu
