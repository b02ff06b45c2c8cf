// Matrix products on the CPU: which kernel runs a product, and why.
//
//   1. A float product of at least 2e6 multiply-adds with a mostly-zero operand (MNIST's pixels
//      are 81% zeros, a ReLU layer's output often more): our sparse kernels (sparse_gemm.h), on
//      every thread. They skip the zeros a dense GEMM multiplies: the tutorial's encoder product
//      in about half OpenBLAS's time (docs/benchmarks.md).
//   2. Otherwise C is cut into bands of its longer side (rows if M >= N, else columns), one band
//      per thread, and each band is one call of OpenBLAS's single-threaded GEMM (inside a
//      parallel region OpenBLAS's OpenMP build runs on the calling thread). A band is at least
//      `band_min_work` multiply-adds, so a small product gets fewer bands, down to one: one call
//      on one thread. OpenBLAS's own threads are never used: our bands were as fast or faster on
//      every shape measured, and small products lose time to its threading.
// Inside a pair (run_pair), which is itself a parallel region, each product takes one thread.
//
// What this promises (docs/architecture.md, "Numbers"): for a fixed build, machine, OpenBLAS
// and thread count the bits are the same run after run (bands and the sparse choice depend only
// on shapes, the thread count and the operand's zeros). Across thread counts, pairs, the sparse
// kernels and OpenBLAS's core types the products agree within float rounding, not bit for bit.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>

#include "backends/cpu/kernels.h"
#include "backends/cpu/loops.h"
#include "backends/cpu/sparse_gemm.h"

namespace ag::cpu {

namespace {

// Sparse kernels only from this much work, and from this share of skipped work: measured with
// digit-like operands on 2 threads, a sparse left operand breaks even near 0.3 (150x784x128 1.36x
// faster at 0.34); a right one, which costs two transposes more, near 0.4. MNIST's pixels skip
// 0.6 as a left operand, 0.6-0.8 as a right one.
constexpr double sparse_min_work = 2e6;
constexpr double sparse_min_zeros_a = 0.4, sparse_min_zeros_b = 0.5;
// A band below this many multiply-adds costs more in threading than it saves (the VAE's
// 20x400x150: 12 us in two bands, 30 on one thread), and so does a K below band_min_k, where
// writing C is the work (150x400x20: 33 us on one thread, 39 in two bands).
constexpr double band_min_work = 4e5;
constexpr int band_min_k = 32;

// A masked product computes its kept entries alone (dot products) when it keeps at most this
// share of them. Measured on the wta's [150, 784] x [784, 1000] gradient, 2 threads: keeping
// 8 of 150 per column (5%), 0.35 ms against 1.28 for the whole product, then the mask
// (bench_kernels BM_masked_product); the whole product costs the same at any share, the kept
// entries in proportion, so 10% still leaves a wide margin.
constexpr double masked_max_kept = 0.1;

std::atomic<int64_t> g_sparse_products{0}, g_paired_products{0}, g_masked_products{0};

int inner_dim(const KernelCall& c) { return int(c.node->attrs.i[0] ? c.in[0].shape[0] : c.in[0].shape[1]); }

// C[m0:m1, n0:n1] = op(A)[m0:m1, :] op(B)[:, n0:n1] (+ bias) in one OpenBLAS call.
template <class T>
void gemm_block(const KernelCall& c, int m0, int m1, int n0, int n1) {
  const bool ta = c.node->attrs.i[0], tb = c.node->attrs.i[1];
  const Tensor &A = c.in[0], &B = c.in[1];
  const int N = int(c.out.shape[1]), K = inner_dim(c), lda = int(A.shape[1]), ldb = int(B.shape[1]);
  const int m = m1 - m0, n = n1 - n0;
  if (m <= 0 || n <= 0) return;
  T* C = c.out.ptr<T>() + int64_t(m0) * N + n0;
  T beta = 0;
  if (c.nin == 3) {  // every row starts from the bias
    for (int i = 0; i < m; ++i) std::memcpy(C + int64_t(i) * N, c.in[2].ptr<T>() + n0, sizeof(T) * size_t(n));
    beta = 1;
  }
  if (K == 0) {
    if (c.nin != 3)
      for (int i = 0; i < m; ++i) std::memset(C + int64_t(i) * N, 0, sizeof(T) * size_t(n));
    return;
  }
  const T* a = A.ptr<T>() + (ta ? int64_t(m0) : int64_t(m0) * lda);
  const T* b = B.ptr<T>() + (tb ? int64_t(n0) * ldb : int64_t(n0));
  const auto opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (sizeof(T) == 4)
    cblas_sgemm(CblasRowMajor, opa, opb, m, n, K, 1.0f, a, lda, b, ldb, beta, C, N);
  else cblas_dgemm(CblasRowMajor, opa, opb, m, n, K, 1.0, a, lda, b, ldb, beta, C, N);
}

// The dense path: `threads` bands at most, each at least band_min_work, cut at multiples of 16
// (OpenBLAS's kernels' unrolling); the last band takes the rest.
template <class T>
void gemm_dense(const KernelCall& c, int threads) {
  const int M = int(c.out.shape[0]), N = int(c.out.shape[1]), K = inner_dim(c);
  const bool by_rows = M >= N;
  const int len = by_rows ? M : N;
  const double work = double(M) * N * K;
  int parts = K < band_min_k ? 1 : int(std::min(double(threads), work / band_min_work));
  parts = std::clamp(parts, 1, std::max(1, len / 16));
  const int step = (len / parts + 15) / 16 * 16;
  // One band still opens a region (the second thread idles) when this process runs several
  // threads: outside one, OpenBLAS would thread the call itself.
#pragma omp parallel num_threads(std::max(parts, 2)) if (threads > 1)
  {
    const int p = omp_get_thread_num();
    if (p < parts) {
      const int lo = std::min(len, p * step), hi = p == parts - 1 ? len : std::min(len, (p + 1) * step);
      if (by_rows) gemm_block<T>(c, lo, hi, 0, N);
      else gemm_block<T>(c, 0, M, lo, hi);
    }
  }
}

// A float product with a mostly-zero operand, on the sparse kernels: false if it is not one.
bool sparse_product(const KernelCall& c, int threads) {
  const bool ta = c.node->attrs.i[0], tb = c.node->attrs.i[1];
  const Tensor &A = c.in[0], &B = c.in[1];
  const Gemm g{ta, tb, int(c.out.shape[0]), int(c.out.shape[1]), inner_dim(c), int(A.shape[1]), int(B.shape[1]),
               A.ptr<float>(), B.ptr<float>(), c.nin == 3 ? c.in[2].ptr<float>() : nullptr, c.out.ptr<float>()};
  if (double(g.M) * g.N * g.K < sparse_min_work) return false;
  const bool sparse_a = !ta && group_zero_fraction(g.A, g.M, g.K, g.lda, false) >= sparse_min_zeros_a;
  if (!sparse_a && (tb || group_zero_fraction(g.B, g.K, g.N, g.ldb, true) < sparse_min_zeros_b)) return false;
  sparse_gemm(g, sparse_a, threads);
  g_sparse_products.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace

void matmul_kernel(const KernelCall& c) {
  const int threads = omp_in_parallel() ? 1 : num_threads();
  if (c.out.dtype == DType::f32) {
    if (!sparse_product(c, threads)) gemm_dense<float>(c, threads);
  } else {
    gemm_dense<double>(c, threads);
  }
}

// masked_matmul: the kept entries alone where the mask keeps few (float only), else the whole
// product and then the mask (where mask > 0, as relu_grad keeps).
template <class T>
void apply_mask(const KernelCall& c, int threads) {
  T* out = c.out.ptr<T>();
  const T* mask = c.in[2].ptr<T>();
  const int64_t n = c.out.numel();
#pragma omp parallel for num_threads(threads) if (threads > 1 && n > parallel_grain) schedule(static)
  for (int64_t e = 0; e < n; ++e) out[e] = mask[e] > T(0) ? out[e] : T(0);
}

void masked_matmul_kernel(const KernelCall& c) {
  const int threads = omp_in_parallel() ? 1 : num_threads();
  KernelCall product = c;
  product.nin = 2;  // no bias: the third input is the mask
  if (c.out.dtype == DType::f32) {
    const bool ta = c.node->attrs.i[0], tb = c.node->attrs.i[1];
    const Gemm g{ta, tb, int(c.out.shape[0]), int(c.out.shape[1]), inner_dim(c), int(c.in[0].shape[1]),
                 int(c.in[1].shape[1]), c.in[0].ptr<float>(), c.in[1].ptr<float>(), nullptr, c.out.ptr<float>()};
    if (masked_gemm(g, c.in[2].ptr<float>(), masked_max_kept, threads)) {
      g_masked_products.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!sparse_product(product, threads)) gemm_dense<float>(product, threads);
    apply_mask<float>(c, threads);
  } else {
    gemm_dense<double>(product, threads);
    apply_mask<double>(c, threads);
  }
}

// A small GEMM on one core runs closer to the core's peak than the same GEMM split over two: on
// the tutorial's backward pass a layer's dW and dx run at once, one per thread.
void run_pair(const KernelCall& a, const KernelCall& b) {
  g_paired_products.fetch_add(2, std::memory_order_relaxed);
#pragma omp parallel num_threads(2)
  cpu_run_call(omp_get_thread_num() == 0 ? a : b);
}

}  // namespace ag::cpu

namespace ag {
int64_t cpu_sparse_products() { return cpu::g_sparse_products.load(std::memory_order_relaxed); }
int64_t cpu_paired_products() { return cpu::g_paired_products.load(std::memory_order_relaxed); }
int64_t cpu_masked_products() { return cpu::g_masked_products.load(std::memory_order_relaxed); }
}  // namespace ag
