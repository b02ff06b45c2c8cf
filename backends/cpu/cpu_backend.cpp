// The CPU backend: host memory, the kernel table (generic loops instantiated per functor from
// the op list, plus GEMM through OpenBLAS and the shape kernels), and threads.
#include <cblas.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>
#include <limits>
#include <cstring>

#include <fmt/format.h>

#include "backends/backend.h"
#include "backends/cpu/loops.h"
#include "backends/cpu/compiled_groups.h"
#include "backends/cpu/sparse_gemm.h"

namespace ag {

namespace {

using CpuKernel = void (*)(const KernelCall&);

template <class F>
void unary_kernel(const KernelCall& c) {
  const F f = fn::make<F>(c.node->attrs);
  if (c.out.dtype == DType::f32) cpu::map(f, c.in[0].ptr<float>(), c.out.ptr<float>(), c.out.numel());
  else cpu::map(f, c.in[0].ptr<double>(), c.out.ptr<double>(), c.out.numel());
}

template <class F>
void binary_kernel(const KernelCall& c) {
  const F f = fn::make<F>(c.node->attrs);
  const Shape &sa = c.in[0].shape, &sb = c.in[1].shape, &sz = c.out.shape;
  if (c.out.dtype == DType::f32) cpu::zip(f, c.in[0].ptr<float>(), c.in[1].ptr<float>(), c.out.ptr<float>(), sa, sb, sz);
  else cpu::zip(f, c.in[0].ptr<double>(), c.in[1].ptr<double>(), c.out.ptr<double>(), sa, sb, sz);
}

template <class F>
void loss_kernel(const KernelCall& c) {
  const F f;
  const double scale = c.node->attrs.f[0];
  const int64_t n = c.in[0].numel();
  if (c.out.dtype == DType::f32)
    *c.out.ptr<float>() = float(scale * cpu::zip_reduce(f, c.in[0].ptr<float>(), c.in[1].ptr<float>(), n));
  else *c.out.ptr<double>() = scale * cpu::zip_reduce(f, c.in[0].ptr<double>(), c.in[1].ptr<double>(), n);
}

template <class D>
void random_kernel(const KernelCall& c) {
  const D d(c.node->attrs);
  if (c.out.dtype == DType::f32) cpu::fill(d, c.out.ptr<float>(), c.out.numel(), uint32_t(*c.in[0].ptr<float>()));
  else cpu::fill(d, c.out.ptr<double>(), c.out.numel(), uint32_t(*c.in[0].ptr<double>()));
}

// Products we split over the threads ourselves, one single-threaded OpenBLAS call per thread on
// a band of C's rows or columns: on 2 cores that runs the tutorial's products at 170-200 GFLOP/s
// where OpenBLAS's own two-thread GEMM reaches 150-175 (bench/bench_kernels.cpp, BM_gemm). Only
// where it cannot change a bit of the result: the inner dimension fits one of OpenBLAS's K blocks
// (then every element is one pass over K, however the threads share the work; past it OpenBLAS's
// threaded and single-threaded drivers cut K differently). Small products split too: two bands
// of 20x400x150 take 12 us where one thread takes 30 and OpenBLAS's two 26 (the VAE's code
// layer; 250x30x150 12 against 38; 150x64x128 19 against 29), with the same bits as one call
// where every band is at least 4e5 (tested, down to bands of 10x400x150 and 70x30x200; a band of
// 22x30x200 rounds differently), except where K is so short that writing C is the work
// (150x400x20: 39 against 33).
constexpr int split_max_k = 256;
constexpr double split_min_band_work = 2e6;  // M N K of a sparse product, or a pair's past one K block
constexpr double small_band_work = 4e5;      // M N K of every band of a dense one; below it, one thread
constexpr int small_band_min_k = 32;
constexpr double small_gemm_work = 1e5;      // below this OpenBLAS keeps to one thread itself
// Up to this many multiply-adds OpenBLAS may take a call to its small-matrix kernels (on this
// machine's cores: 100^3), which do not cut K into blocks and round differently.
constexpr double small_kernel_work = 1e6;

// C[m0:m1, n0:n1] (+)= op(A)[m0:m1, k0:k1] op(B)[k0:k1, n0:n1] in one OpenBLAS call: from k0 = 0
// C starts from the bias (copied in, beta = 1) or zero (beta = 0; with `zero_c`, zeros written and
// beta = 1, which keeps a small row-major product off OpenBLAS's direct path: it does not cut K);
// later blocks of K add to it.
template <class T>
void gemm_band(const KernelCall& c, int m0, int m1, int n0, int n1, int k0, int k1, bool zero_c = false) {
  const bool ta = c.node->attrs.i[0], tb = c.node->attrs.i[1];
  const Tensor &A = c.in[0], &B = c.in[1];
  const int N = int(c.out.shape[1]);
  const int lda = int(A.shape[1]), ldb = int(B.shape[1]);
  T* C = c.out.ptr<T>() + int64_t(m0) * N + n0;
  const int m = m1 - m0, n = n1 - n0, k = k1 - k0;
  if (m <= 0 || n <= 0) return;
  T beta = k0 > 0 ? 1 : 0;
  if (k0 == 0 && c.nin == 3) {
    const T* bias = c.in[2].ptr<T>() + n0;
    for (int i = 0; i < m; ++i) std::memcpy(C + int64_t(i) * N, bias, sizeof(T) * size_t(n));
    beta = 1;
  } else if (k0 == 0 && zero_c && k > 0) {
    for (int i = 0; i < m; ++i) std::memset(C + int64_t(i) * N, 0, sizeof(T) * size_t(n));
    beta = 1;
  }
  if (k == 0) {
    if (k0 == 0 && c.nin != 3)
      for (int i = 0; i < m; ++i) std::memset(C + int64_t(i) * N, 0, sizeof(T) * size_t(n));
    return;
  }
  const T* a = A.ptr<T>() + (ta ? int64_t(k0) * lda + m0 : int64_t(m0) * lda + k0);
  const T* b = B.ptr<T>() + (tb ? int64_t(n0) * ldb + k0 : int64_t(k0) * ldb + n0);
  const auto opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (sizeof(T) == 4)
    cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, 1.0f, a, lda, b, ldb, beta, C, N);
  else cblas_dgemm(CblasRowMajor, opa, opb, m, n, k, 1.0, a, lda, b, ldb, beta, C, N);
}

int inner_dim(const KernelCall& c) { return int(c.node->attrs.i[0] ? c.in[0].shape[0] : c.in[0].shape[1]); }

template <class T>
void gemm_band(const KernelCall& c, int m0, int m1, int n0, int n1) { gemm_band<T>(c, m0, m1, n0, n1, 0, inner_dim(c)); }

int num_threads_now();

// Where the sparse kernels (sparse_gemm.h) give OpenBLAS's bits on this machine, found once by
// trying them against OpenBLAS on a few products: whether they do at all (one K block), and how
// OpenBLAS cuts a longer K on several threads (GEMM_Q) and on one (GEMM_Q and the rounding of a
// halved remainder). None of that is in OpenBLAS's API, and it depends on the core it picked.
struct SparseRules {
  bool ok = false;
  int threaded_q = 0;     // 0: unknown, products with K > split_max_k stay dense on threads
  cpu::KBlocks one_thread;  // q = 0: unknown, likewise on one thread
};

std::vector<float> probe_matrix(int64_t n, double f, bool sparse) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[size_t(i)] = sparse && (i * 2654435761u) % 97 < 78 ? 0.0f : float(std::sin(f * double(i + 1)));
  return v;
}

SparseRules find_sparse_rules() {
  const int saved_threads = openblas_get_num_threads();
  SparseRules r;
  // C = op(A) op(B) with the sparse side zeros in 80 of 100 places; OpenBLAS on `threads`
  // threads against the sparse kernels cutting K as `blocks` says.
  auto agrees = [](bool sparse_a, bool ta, bool tb, int M, int N, int K, int threads,
                   std::initializer_list<cpu::KBlocks> tries, cpu::KBlocks* found) {
    const std::vector<float> a = probe_matrix(int64_t(M) * K, 0.37, sparse_a),
                             b = probe_matrix(int64_t(K) * N, 0.91, !sparse_a), bias = probe_matrix(N, 1.3, false);
    std::vector<float> want(size_t(M) * N), got(size_t(M) * N);
    cpu::Gemm g{ta, tb, M, N, K, ta ? M : K, tb ? K : N, a.data(), b.data(), bias.data(), want.data()};
    for (int i = 0; i < M; ++i) std::copy(bias.begin(), bias.end(), want.begin() + int64_t(i) * N);
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, g.A,
                g.lda, g.B, g.ldb, 1.0f, want.data(), N);
    g.C = got.data();
    for (const cpu::KBlocks& blocks : tries) {
      cpu::sparse_gemm(g, sparse_a, blocks, 2);
      if (got == want) {
        if (found) *found = blocks;
        return true;
      }
    }
    return false;
  };
  // One K block, both kernels, every way D is read.
  r.ok = agrees(true, false, true, 128, 256, 200, 1, {{}}, nullptr) &&
         agrees(true, false, false, 128, 256, 200, 1, {{}}, nullptr) &&
         agrees(false, true, false, 128, 256, 150, 1, {{}}, nullptr) &&
         agrees(false, false, false, 128, 256, 150, 1, {{}}, nullptr);
  if (r.ok) {
    // Several blocks: K = 1700 starts with a whole block for every candidate q, so each cuts it
    // differently. OpenBLAS's values first, then every multiple of 8.
    std::vector<int> qs = {256, 320, 384, 512, 192, 128, 448, 640, 768};
    for (int q = 128; q <= 800; q += 8)
      if (std::find(qs.begin(), qs.end(), q) == qs.end()) qs.push_back(q);
    cpu::KBlocks found;
    for (int q : qs)
      if (agrees(true, false, false, 128, 256, 1700, 2, {{q, 0}}, &found)) {
        r.threaded_q = q;
        break;
      }
    // One thread: the same q, a K whose last remainder (between q and 2q) is halved and rounded.
    const int q = r.threaded_q;
    if (q > 0 && agrees(true, false, false, 128, 256, 3 * q + q / 2 + 5, 1,
                        {{q, 16}, {q, 8}, {q, 32}, {q, 4}, {q, 2}, {q, 1}}, &found))
      r.one_thread = found;
  }
  openblas_set_num_threads(saved_threads);
  return r;
}

// At least this share of the work skipped, else the dense kernels are faster (MNIST's pixels: 0.6
// as a left operand, 0.6-0.8 as a right one). Measured with digit-like operands on 2 threads: a
// sparse left operand breaks even near 0.3 (150x784x128 1.36x faster at 0.34, 150x1000x500 even
// at 0.33); a right one, which also costs two transposes, near 0.4.
constexpr double sparse_min_zeros_a = 0.4, sparse_min_zeros_b = 0.5;
std::atomic<int64_t> g_sparse_products{0}, g_paired_products{0};

const SparseRules& sparse_rules() {
  static const SparseRules rules = find_sparse_rules();
  return rules;
}

// Set while run_pair runs two products side by side, one per thread: each then makes the
// choices of an unpaired run on num_threads_now() threads (and so gets its bits) but runs on one.
thread_local bool t_paired = false;

// Whether OpenBLAS's threaded driver takes this product on `parts` threads: every float product
// this large with both sides of C at least 64 goes to it.
bool threaded_driver(int M, int N, int K, int parts) {
  return parts > 1 && double(M) * N * K >= split_min_band_work && M >= 64 && N >= 64;
}

// A float product past one K block that the threaded driver would not take (on two threads the
// VAE's heads, 150x400 times 400x20; a C narrower than 64), but past the small-matrix kernels: it
// runs with OpenBLAS's single-threaded driver whatever the thread count, as one call (alone on
// one thread, or in a pair) or in bands that are each past the small-matrix kernels too, so its
// bits are that driver's everywhere. (OpenBLAS's own two threads take the heads in 37-46 us;
// one call 33-38, two side by side in a pair about as long as one.)
bool one_thread_driver(const KernelCall& c, int parts) {
  const int M = int(c.out.shape[0]), N = int(c.out.shape[1]), K = inner_dim(c);
  return c.out.dtype == DType::f32 && K > split_max_k && !threaded_driver(M, N, K, parts) &&
         double(M) * N * K > small_kernel_work;
}

// How OpenBLAS cuts K in this product's dense run on `parts` threads, where we know it: one block
// (K fits one on every core), the threaded driver's cut, or the single-threaded one's (on one
// thread, or a product one_thread_driver keeps on it). False: not known.
bool dense_k_blocks(const KernelCall& c, int parts, cpu::KBlocks* blocks) {
  const int M = int(c.out.shape[0]), N = int(c.out.shape[1]), K = inner_dim(c);
  *blocks = {};
  if (K <= split_max_k) return true;
  if (c.out.dtype != DType::f32) return false;
  const SparseRules& rules = sparse_rules();
  if (threaded_driver(M, N, K, parts)) *blocks = {rules.threaded_q, 0};
  else if (parts == 1 || one_thread_driver(c, parts)) *blocks = rules.one_thread;
  return blocks->q > 0;
}

// Whether a product can run on one thread in a pair with the bits of its unpaired run: we know
// how its unpaired run cuts K (and repeat that block by block), or it is one single-threaded call.
bool pairable(const KernelCall& c) {
  cpu::KBlocks blocks;
  return c.node->op == OpCode::matmul &&
         (one_thread_driver(c, num_threads_now()) || dense_k_blocks(c, num_threads_now(), &blocks));
}

// A float product with a mostly-zero operand, on the sparse kernels when they give the bits the
// dense path below would: false if it is not one. `parts`: the threads the dense path would use
// (which decides how OpenBLAS cuts K); `threads`: the threads to run on.
bool sparse_product(const KernelCall& c, int parts, int threads) {
  const bool ta = c.node->attrs.i[0], tb = c.node->attrs.i[1];
  const Tensor &A = c.in[0], &B = c.in[1];
  const cpu::Gemm g{ta, tb, int(c.out.shape[0]), int(c.out.shape[1]), int(ta ? A.shape[0] : A.shape[1]),
                    int(A.shape[1]), int(B.shape[1]), A.ptr<float>(), B.ptr<float>(),
                    c.nin == 3 ? c.in[2].ptr<float>() : nullptr, c.out.ptr<float>()};
  const bool sparse_a = !ta && cpu::group_zero_fraction(g.A, g.M, g.K, g.lda, false) >= sparse_min_zeros_a;
  if (!sparse_a && (tb || cpu::group_zero_fraction(g.B, g.K, g.N, g.ldb, true) < sparse_min_zeros_b)) return false;
  cpu::KBlocks blocks;
  if (!sparse_rules().ok || !dense_k_blocks(c, parts, &blocks)) return false;
  cpu::sparse_gemm(g, sparse_a, blocks, threads);
  g_sparse_products.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// C[m0:m1, n0:n1] in one OpenBLAS call per block of K (blocks = {}: one call over all of K). Past
// one K block, C starts from zeros with beta = 1: with beta = 0 a small row-major product may take
// OpenBLAS's direct path, which does not cut K.
template <class T>
void gemm_k_blocks(const KernelCall& c, int m0, int m1, int n0, int n1, const cpu::KBlocks& blocks) {
  const int K = inner_dim(c);
  int k0 = 0;
  do {
    const int kb = blocks.next(K - k0);
    gemm_band<T>(c, m0, m1, n0, n1, k0, k0 + kb, K > split_max_k);
    k0 += kb;
  } while (k0 < K);
}

// `len` rows or columns of C in one band per thread, cut at multiples of 16 (the kernels'
// unrolling); the last band takes the rest, and a band may be empty.
struct Bands {
  int len, parts, step;
  Bands(int len_, int parts_) : len(len_), parts(parts_), step((len_ / parts_ + 15) / 16 * 16) {}
  std::pair<int, int> operator[](int p) const {
    return {std::min(len, p * step), p == parts - 1 ? len : std::min(len, (p + 1) * step)};
  }
  int smallest() const {  // the shortest band that is not empty
    int s = len;
    for (int p = 0; p < parts; ++p)
      if (const auto [lo, hi] = (*this)[p]; hi > lo) s = std::min(s, hi - lo);
    return s;
  }
};

// Each band of C's rows (or columns) on its own thread, K cut as `blocks` says.
template <class T>
void gemm_in_bands(const KernelCall& c, const Bands& bands, bool by_rows, const cpu::KBlocks& blocks) {
  const int M = int(c.out.shape[0]), N = int(c.out.shape[1]);
#pragma omp parallel for num_threads(bands.parts) schedule(static, 1)
  for (int p = 0; p < bands.parts; ++p) {
    const auto [lo, hi] = bands[p];
    if (by_rows) gemm_k_blocks<T>(c, lo, hi, 0, N, blocks);
    else gemm_k_blocks<T>(c, 0, M, lo, hi, blocks);
  }
}

// The whole product on one thread: inside a parallel region OpenBLAS stays on one thread.
template <class T>
void gemm_one_thread(const KernelCall& c, int parts) {
  const int M = int(c.out.shape[0]), N = int(c.out.shape[1]);
#pragma omp parallel num_threads(2) if (parts > 1)
  if (omp_get_thread_num() == 0) gemm_k_blocks<T>(c, 0, M, 0, N, {});
}

template <class T>
void gemm(const KernelCall& c) {
  const int M = int(c.out.shape[0]), N = int(c.out.shape[1]), K = inner_dim(c);
  const bool paired = t_paired;
  // The threads this product's choices are made for (in a pair: as if it ran alone), and run on.
  const int parts = paired || !omp_in_parallel() ? num_threads_now() : 1, threads = paired ? 1 : parts;
  const double work = double(M) * N * K;
  // Far above OpenBLAS's small-matrix kernels, outside a parallel region: a mostly-zero operand.
  if constexpr (sizeof(T) == 4)
    if ((paired || !omp_in_parallel()) && work >= split_min_band_work && sparse_product(c, parts, threads)) return;
  const bool single_driver = one_thread_driver(c, parts);
  cpu::KBlocks blocks;
  if (paired) {  // one thread, K cut as the unpaired run cuts it (run_pair checked it is known)
    if (!single_driver) dense_k_blocks(c, parts, &blocks);  // a single-driver product: one call
    gemm_k_blocks<T>(c, 0, M, 0, N, blocks);
    return;
  }
  const bool by_rows = M >= N;
  if (single_driver) {
    // In bands where every one is past the small-matrix kernels, else on one thread.
    const Bands bands(by_rows ? M : N, parts);
    if (parts < 2 || work / bands.len * bands.smallest() <= small_kernel_work) gemm_one_thread<T>(c, parts);
    else gemm_in_bands<T>(c, bands, by_rows, {});
    return;
  }
  if (K > split_max_k && threaded_driver(M, N, K, parts) && dense_k_blocks(c, parts, &blocks)) {
    // Past one K block on OpenBLAS's threaded driver: column bands of our own, one thread each,
    // K cut as that driver cuts it (so its bits), where every block of every band is past the
    // small-matrix kernels: 3-10% faster than its own threads (BM_gemm, two threads: the
    // tutorial's encoder 190 -> 170-176 us, deep_dh1 1305-1362 -> 1216-1279 us; the VAE's
    // decoder forward is the one such product its step does not pair).
    const Bands bands(N, parts);
    int smallest_block = K;
    for (int k0 = 0; k0 < K; k0 += blocks.next(K - k0)) smallest_block = std::min(smallest_block, blocks.next(K - k0));
    if (bands.smallest() >= 16 && double(M) * bands.smallest() * smallest_block > small_kernel_work) {
      gemm_in_bands<T>(c, bands, false, blocks);
      return;
    }
  }
  if (parts < 2 || K > split_max_k || work < small_gemm_work) {
    gemm_band<T>(c, 0, M, 0, N);  // OpenBLAS threads it (or not) itself
    return;
  }
  // K fits one block: bands of the longer side.
  const Bands bands(by_rows ? M : N, parts);
  if (work / bands.len * bands.smallest() < small_band_work || K < small_band_min_k) {
    // Too small for bands, and OpenBLAS's threading costs more than it brings (150x400x20: 33 us
    // on one thread, 36 on two).
    gemm_one_thread<T>(c, parts);
    return;
  }
  gemm_in_bands<T>(c, bands, by_rows, {});
}
void matmul_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? gemm<float>(c) : gemm<double>(c); }

template <class T>
void sum_all(const KernelCall& c) { *c.out.ptr<T>() = T(cpu::sum(c.in[0].ptr<T>(), c.in[0].numel())); }
void sum_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? sum_all<float>(c) : sum_all<double>(c); }

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
void sum_axis_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? sum_over_axis<float>(c) : sum_over_axis<double>(c); }

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
void logsumexp_kernel(const KernelCall& c) {
  c.out.dtype == DType::f32 ? logsumexp_over_axis<float>(c) : logsumexp_over_axis<double>(c);
}

// y[idx] = x[idx with broadcast axes pinned to 0], up to rank 4.
template <class T>
void broadcast(const KernelCall& c) {
  const Shape &so = c.out.shape, &si = c.in[0].shape;
  int64_t od[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
  const int r = so.rank;
  int64_t stride = 1;
  for (int k = r - 1; k >= 0; --k) {
    od[4 - r + k] = so.dim[k];
    int ik = si.rank - r + k;
    int64_t d = ik >= 0 ? si.dim[ik] : 1;
    st[4 - r + k] = d == 1 ? 0 : stride;
    stride *= d;
  }
  const T* x = c.in[0].ptr<T>();
  T* y = c.out.ptr<T>();
#pragma omp parallel for collapse(2) schedule(static) if (c.out.numel() > cpu::parallel_grain)
  for (int64_t a = 0; a < od[0]; ++a)
    for (int64_t b = 0; b < od[1]; ++b)
      for (int64_t cc = 0; cc < od[2]; ++cc) {
        T* yr = y + ((a * od[1] + b) * od[2] + cc) * od[3];
        const T* xr = x + a * st[0] + b * st[1] + cc * st[2];
        for (int64_t d = 0; d < od[3]; ++d) yr[d] = xr[d * st[3]];
      }
}
void broadcast_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? broadcast<float>(c) : broadcast<double>(c); }

// Shape copies see tensors as [outer, axis, inner], inner in bytes.
struct AxisView {
  int64_t outer = 1, inner_bytes = 1;
};
AxisView axis_view(const Shape& s, int axis, size_t elem) {
  const AxisSplit a = split_at_axis(s, axis);
  return AxisView{a.outer, a.inner * int64_t(elem)};
}

// Copies `src` (axis length len) into `dst` (axis length total) at offset `at`, or back.
void copy_along(char* dst, int64_t dst_len, int64_t dst_at, const char* src, int64_t src_len, int64_t src_at,
                int64_t len, const AxisView& v) {
  for (int64_t o = 0; o < v.outer; ++o)
    std::memcpy(dst + (o * dst_len + dst_at) * v.inner_bytes, src + (o * src_len + src_at) * v.inner_bytes,
                size_t(len * v.inner_bytes));
}

void slice_kernel(const KernelCall& c) {
  const int axis = int(c.node->attrs.i[0]);
  AxisView v = axis_view(c.in[0].shape, axis, dtype_size(c.out.dtype));
  copy_along(c.out.ptr<char>(), c.out.shape[axis], 0, c.in[0].ptr<char>(), c.in[0].shape[axis], c.node->attrs.i[1],
             c.out.shape[axis], v);
}

void pad_kernel(const KernelCall& c) {
  const int axis = int(c.node->attrs.i[0]);
  std::memset(c.out.data, 0, c.out.bytes());
  AxisView v = axis_view(c.out.shape, axis, dtype_size(c.out.dtype));
  copy_along(c.out.ptr<char>(), c.out.shape[axis], c.node->attrs.i[1], c.in[0].ptr<char>(), c.in[0].shape[axis], 0,
             c.in[0].shape[axis], v);
}

void concat_kernel(const KernelCall& c) {
  const int axis = int(c.node->attrs.i[0]);
  AxisView v = axis_view(c.out.shape, axis, dtype_size(c.out.dtype));
  int64_t at = 0;
  for (int k = 0; k < c.nin; ++k) {
    copy_along(c.out.ptr<char>(), c.out.shape[axis], at, c.in[k].ptr<char>(), c.in[k].shape[axis], 0,
               c.in[k].shape[axis], v);
    at += c.in[k].shape[axis];
  }
}

void assign_kernel(const KernelCall& c) {
  if (c.out.data != c.in[1].data) std::memcpy(c.out.data, c.in[1].data, c.out.bytes());
}

// ---- fused groups: each op of the group runs over one cache-sized block at a time ----
template <class T>
using BlockFn = void (*)(const Attrs& attrs, const T* a, const T* b, T* y, int64_t n);
enum BlockMode { both_full = 0, a_scalar = 1, b_scalar = 2 };

template <class F, class T>
void block_unary(const Attrs& at, const T* a, const T*, T* y, int64_t n) {
  const F f = fn::make<F>(at);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = f(a[i]);
}

template <class F, class T, int mode>
void block_binary(const Attrs& at, const T* a, const T* b, T* y, int64_t n) {
  const F f = fn::make<F>(at);
  if constexpr (mode == a_scalar) {
    const T av = a[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = f(av, b[i]);
  } else if constexpr (mode == b_scalar) {
    const T bv = b[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], bv);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  }
}

template <class T>
struct BlockTable {
  BlockFn<T> fn[op_count][3] = {};
  BlockTable() {
#define AG_BLOCK_UNARY(name, F) fn[int(OpCode::name)][both_full] = block_unary<fn::F, T>;
#define AG_BLOCK_BINARY(name, F)                                                   \
  fn[int(OpCode::name)][both_full] = block_binary<fn::F, T, both_full>;           \
  fn[int(OpCode::name)][a_scalar] = block_binary<fn::F, T, a_scalar>;             \
  fn[int(OpCode::name)][b_scalar] = block_binary<fn::F, T, b_scalar>;
    AG_UNARY_OPS(AG_BLOCK_UNARY)
    AG_BINARY_OPS(AG_BLOCK_BINARY)
#undef AG_BLOCK_UNARY
#undef AG_BLOCK_BINARY
  }
};

template <class T>
void fused_kernel(const KernelCall& c) {
  static const BlockTable<T> table;
  constexpr int64_t block = 512;
  const int64_t n = c.out.numel(), blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static) if (n > cpu::parallel_grain)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    alignas(64) T scratch[max_fused_ops][block];
    const T* result[max_fused_ops];  // where each op's block is
    const int64_t lo = blk * block, len = std::min(block, n - lo);
    // Where operand k of this block is, and whether it is one value for all elements.
    auto operand = [&](int k, bool* scalar) -> const T* {
      if (k < 0) {
        *scalar = false;
        return result[-k - 1];
      }
      *scalar = c.in[k].numel() == 1;
      return *scalar ? c.in[k].ptr<T>() : c.in[k].ptr<T>() + lo;
    };
    for (int j = 0; j < c.nfused; ++j) {
      const FusedOp& op = c.fused[j];
      if (op.node->op == OpCode::assign) {  // store the value's block into the target (input a)
        T* target = static_cast<T*>(c.in[op.a].data) + lo;
        std::memcpy(target, result[-op.b - 1], sizeof(T) * size_t(len));
        result[j] = target;
        continue;
      }
      T* y = j == c.nfused - 1 ? c.out.ptr<T>() + lo : scratch[j];
      result[j] = y;
      if (op.node->op == OpCode::broadcast_to) {  // input a: a column [M, 1] or a row [N] of [M, N]
        const Tensor& in = c.in[op.a];
        const T* x = in.ptr<T>();
        const bool column = in.shape.rank == 2 && in.shape[1] == 1;
        const int64_t N = op.node->shape[1];
        int64_t row = lo / N, col = lo % N;
        for (int64_t i = 0; i < len; ++row, col = 0) {  // the block, one stretch of a row at a time
          const int64_t run = std::min(len - i, N - col);
          if (column) std::fill(y + i, y + i + run, x[row]);
          else std::memcpy(y + i, x + col, sizeof(T) * size_t(run));
          i += run;
        }
        continue;
      }
      bool sa = false, sb = false;
      const T* a = operand(op.a, &sa);
      const T* b = op.node->in.size() > 1 ? operand(op.b, &sb) : nullptr;
      const int mode = sa ? a_scalar : sb ? b_scalar : both_full;
      table.fn[int(op.node->op)][mode](op.node->attrs, a, b, y, len);
    }
  }
}

void run_call(const KernelCall& c);

// Two independent matrix products, one per thread: a small GEMM on one core runs closer to the
// core's peak than the same GEMM split over two (OpenBLAS runs single-threaded inside a
// parallel region). On the tutorial's backward pass this is dW and dx of a layer at once. Each
// keeps the bits it has alone; a product that cannot promise that runs alone, and so does its
// partner.
void run_pair(const KernelCall& a, const KernelCall& b) {
  sparse_rules();  // found outside any parallel region (it compares with OpenBLAS's threads)
  if (!pairable(a) || !pairable(b)) {
    run_call(a);
    run_call(b);
    return;
  }
  g_paired_products.fetch_add(2, std::memory_order_relaxed);
#pragma omp parallel num_threads(2)
  {
    t_paired = true;
    run_call(omp_get_thread_num() == 0 ? a : b);
    t_paired = false;
  }
}

void no_kernel(const KernelCall& c) {
  throw Error(fmt::format("cpu: {} has no kernel (it should not be a step)", op_name(c.node->op)));
}

struct KernelTable {
  CpuKernel k[op_count];
  KernelTable() {
    for (auto& f : k) f = no_kernel;
#define AG_CPU_UNARY(name, F) k[int(OpCode::name)] = unary_kernel<fn::F>;
#define AG_CPU_BINARY(name, F) k[int(OpCode::name)] = binary_kernel<fn::F>;
#define AG_CPU_LOSS(name, F) k[int(OpCode::name)] = loss_kernel<fn::F>;
#define AG_CPU_RANDOM(name, F) k[int(OpCode::name)] = random_kernel<fn::F>;
    AG_UNARY_OPS(AG_CPU_UNARY)
    AG_BINARY_OPS(AG_CPU_BINARY)
    AG_LOSS_OPS(AG_CPU_LOSS)
    AG_RANDOM_OPS(AG_CPU_RANDOM)
#undef AG_CPU_UNARY
#undef AG_CPU_BINARY
#undef AG_CPU_LOSS
#undef AG_CPU_RANDOM
    k[int(OpCode::matmul)] = matmul_kernel;
    k[int(OpCode::sum)] = sum_kernel;
    k[int(OpCode::sum_axis)] = sum_axis_kernel;
    k[int(OpCode::logsumexp)] = logsumexp_kernel;
    k[int(OpCode::broadcast_to)] = broadcast_kernel;
    k[int(OpCode::slice)] = slice_kernel;
    k[int(OpCode::pad)] = pad_kernel;
    k[int(OpCode::concat)] = concat_kernel;
    k[int(OpCode::assign)] = assign_kernel;
  }
};
const KernelTable kernels;

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }
  void* alloc(size_t bytes) override {
    void* p = std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
    if (!p) throw Error(fmt::format("cpu: out of memory allocating {} bytes", bytes));
    return p;
  }
  void release(void* p) override { std::free(p); }
  void* alloc_host(size_t bytes) override { return alloc(bytes); }
  void release_host(void* p) override { std::free(p); }
  void upload(void* d, const void* h, size_t n) override { if (n) std::memcpy(d, h, n); }
  void download(void* h, const void* d, size_t n) override { if (n) std::memcpy(h, d, n); }
  void run(const Program& p) override {
    for (int i = 0; i < p.nuploads; ++i) upload(p.uploads[i].device, p.uploads[i].host, p.uploads[i].bytes);
    if (profile_) return run_profiled(p);
    for (int i = 0; i < p.ncalls; ++i) {
      if (p.calls[i].with_next && i + 1 < p.ncalls && num_threads() > 1) {
        run_pair(p.calls[i], p.calls[i + 1]);
        ++i;
      } else {
        run_call(p.calls[i]);
      }
    }
  }
  ~CpuBackend() override {
    if (profile_) print_profile();
  }
  bool runs_fused() const override { return true; }

 private:
  // AEGRAPH_PROFILE=1: time every call of every program and print where the time went at exit.
  struct CallTime {
    std::string what;
    double seconds = 0;
    int64_t runs = 0;
  };
  void run_profiled(const Program& p) {
    std::vector<CallTime>& times = profile_times_[p.id];
    if (times.size() != size_t(p.ncalls)) {
      times.assign(size_t(p.ncalls), {});
      for (int i = 0; i < p.ncalls; ++i) {
        const KernelCall& c = p.calls[i];
        times[size_t(i)].what = fmt::format("{} {}", op_name(c.node->op), c.out.shape.str());
        for (int j = 0; j + 1 < c.nfused; ++j) times[size_t(i)].what += fmt::format(" +{}", op_name(c.fused[j].node->op));
        if (c.nfused == 0) continue;
        if (const cpu::CompiledGroup g = cpu::compiled_group(c); g.run) times[size_t(i)].what += fmt::format(" (compiled: {})", g.name);
        else if (profile_ > 1) times[size_t(i)].what += fmt::format("\n             group {}", cpu::group_signature(c));
      }
    }
    for (int i = 0; i < p.ncalls; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      run_call(p.calls[i]);
      times[size_t(i)].seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++times[size_t(i)].runs;
    }
  }
  void print_profile() const {
    for (const auto& [id, times] : profile_times_) {
      double total = 0;
      for (const CallTime& t : times) total += t.seconds;
      if (times.empty() || times[0].runs == 0) continue;
      fmt::print(stderr, "aegraph profile: program {} ({} runs, {:.3f} ms a run)\n", id, times[0].runs,
                 1e3 * total / double(times[0].runs));
      for (const CallTime& t : times)
        fmt::print(stderr, "  {:8.1f} us {:5.1f}%  {}\n", 1e6 * t.seconds / double(std::max<int64_t>(t.runs, 1)),
                   100 * t.seconds / std::max(total, 1e-12), t.what);
    }
    fmt::print(stderr, "aegraph profile: {} matrix products ran on the kernels for a mostly-zero operand\n",
               cpu_sparse_products());
  }
  const int profile_ = [] {  // 2: also the op list of every group that runs in the interpreter
    const char* v = std::getenv("AEGRAPH_PROFILE");
    return v && *v && *v != '0' ? std::max(1, std::atoi(v)) : 0;
  }();
  std::map<uint64_t, std::vector<CallTime>> profile_times_;
};

int g_threads = 0;
int num_threads_now() { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

void run_call(const KernelCall& c) {
  if (c.nfused == 0) kernels.k[int(c.node->op)](c);
  else if (const cpu::CompiledGroup g = cpu::compiled_group(c); g.run) g.run(c);
  else if (c.out.dtype == DType::f32) fused_kernel<float>(c);
  else fused_kernel<double>(c);
}

}  // namespace

void cpu_run_call(const KernelCall& call) { run_call(call); }

Backend& cpu_backend() {
  static CpuBackend b;
  return b;
}

void set_num_threads(int n) {
  g_threads = n > 0 ? n : omp_get_num_procs();
  omp_set_num_threads(g_threads);
  openblas_set_num_threads(g_threads);
}

int num_threads() { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

int64_t cpu_sparse_products() { return g_sparse_products.load(std::memory_order_relaxed); }
int64_t cpu_paired_products() { return g_paired_products.load(std::memory_order_relaxed); }

}  // namespace ag
