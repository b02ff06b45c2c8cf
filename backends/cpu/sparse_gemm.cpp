// Products with a mostly-zero operand (sparse_gemm.h).
//
// Both cases become one shape: rows of a sparse matrix S times a dense row-major D,
// out[r, :] = sum_k S[r, k] D[k, :], summed from zero in k order with one FMA per nonzero and
// then added to out (which holds the bias or zero). A sparse left operand (C = A op(B)): S = A,
// D = op(B), out = C. A sparse right operand (C = op(A) B): C^T = B^T op(A)^T, so S = B^T (the
// nonzeros of each column of B), D = op(A)^T, out = C^T, transposed into C at the end.
#include "backends/cpu/sparse_gemm.h"
#include "backends/cpu/vectors.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace ag::cpu {

namespace {

// One vector of floats: AVX-512 or AVX2 with FMA where the build has them, else one float.
#if defined(__AVX512F__)
constexpr int W = 16;
using V = __m512;
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
inline V vset(float x) { return _mm512_set1_ps(x); }
inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int W = 8;
using V = __m256;
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
inline V vset(float x) { return _mm256_set1_ps(x); }
inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
#else
constexpr int W = 1;
using V = float;
inline V vload(const float* p) { return *p; }
inline void vstore(float* p, V v) { *p = v; }
inline V vset(float x) { return x; }
inline V vfma(V a, V b, V c) { return std::fma(a, b, c); }
inline V vadd(V a, V b) { return a + b; }
#endif

// Sparse rows go four at a time over the k where any of them is nonzero (the others' zeros
// there are FMAs that change nothing), so that each vector of D loaded serves four rows.
constexpr int group = 4;
constexpr int tile_vectors = 4;  // accumulators: 4 rows x 4 vectors, in registers
constexpr int tile = tile_vectors * W;

// One group of sparse rows: the k where any is nonzero (ascending), and each row's values there.
struct Group {
  const int32_t* k;
  const float* v[group];
  int n;
};

// out[r][c : c + NV W] += the group's sums over its entries, for its rows r.
template <int NV>
inline void block_vectors(const Group& s, const float* D, int64_t ldd, int c, float* const* out) {
  V acc[group][NV];
  for (int r = 0; r < group; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = vset(0.0f);
  for (int e = 0; e < s.n; ++e) {
    const float* d = D + s.k[e] * ldd + c;
    V dv[NV];
    for (int j = 0; j < NV; ++j) dv[j] = vload(d + j * W);
    for (int r = 0; r < group; ++r) {
      const V a = vset(s.v[r][e]);
      for (int j = 0; j < NV; ++j) acc[r][j] = vfma(a, dv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < group; ++r)
    if (out[r])
      for (int j = 0; j < NV; ++j) vstore(out[r] + c + j * W, vadd(acc[r][j], vload(out[r] + c + j * W)));
}

// The last columns [c, c1), fewer than a vector: AVX-512 masks them; elsewhere one at a time.
inline void block_tail(const Group& s, const float* D, int64_t ldd, int c, int c1, float* const* out) {
#if defined(__AVX512F__)
  const __mmask16 m = __mmask16((1u << (c1 - c)) - 1);
  __m512 acc[group];
  for (int r = 0; r < group; ++r) acc[r] = _mm512_setzero_ps();
  for (int e = 0; e < s.n; ++e) {
    const __m512 d = _mm512_maskz_loadu_ps(m, D + s.k[e] * ldd + c);
    for (int r = 0; r < group; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(s.v[r][e]), d, acc[r]);
  }
  for (int r = 0; r < group; ++r)
    if (out[r]) _mm512_mask_storeu_ps(out[r] + c, m, _mm512_add_ps(acc[r], _mm512_maskz_loadu_ps(m, out[r] + c)));
#else
  for (; c < c1; ++c)
    for (int r = 0; r < group; ++r) {
      if (!out[r]) continue;
      float acc = 0.0f;
      for (int e = 0; e < s.n; ++e) acc = std::fma(s.v[r][e], D[s.k[e] * ldd + c], acc);
      out[r][c] = acc + out[r][c];
    }
#endif
}

// out[r][c0:c1] += S[r, :] D[:, c0:c1] for the group's rows.
void group_times_dense(const Group& s, const float* D, int64_t ldd, int c0, int c1, float* const* out) {
  int c = c0;
  for (; c + tile <= c1; c += tile) block_vectors<tile_vectors>(s, D, ldd, c, out);
  for (; c + W <= c1; c += W) block_vectors<1>(s, D, ldd, c, out);
  if (c < c1) block_tail(s, D, ldd, c, c1, out);
}

// dst[c, r] = src[r, c] for rows [r0, r1) of src (vectors.h: 16 x 16 squares through registers).
void transpose_rows(const float* src, int64_t lds, int r0, int r1, int cols, float* dst, int64_t ldd) {
  if (r1 > r0 && cols > 0) transpose(src + r0 * lds, r1 - r0, cols, lds, dst + r0, ldd);
}

// The k in [0, n) where any of the rows x[r] (null: a row of zeros) is nonzero (NaN counts:
// it is not zero), in order, into ks, and each row's values there into vs[r]; returns how many.
// ks and vs[r] have room for n + 16.
int group_nonzeros(const float* const* x, int n, int32_t* ks, float* const* vs) {
  int count = 0, i = 0;
#if defined(__AVX512F__)
  const __m512 zero = _mm512_setzero_ps();
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; i < n; i += 16) {
    const __mmask16 in = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    __m512 v[group];
    __mmask16 m = 0;
    for (int r = 0; r < group; ++r) {
      v[r] = x[r] ? _mm512_maskz_loadu_ps(in, x[r] + i) : zero;
      m |= _mm512_mask_cmp_ps_mask(in, v[r], zero, _CMP_NEQ_UQ);
    }
    if (!m) continue;
    for (int r = 0; r < group; ++r) _mm512_storeu_ps(vs[r] + count, _mm512_maskz_compress_ps(m, v[r]));
    _mm512_storeu_si512(ks + count, _mm512_maskz_compress_epi32(m, _mm512_add_epi32(iota, _mm512_set1_epi32(i))));
    count += __builtin_popcount(m);
  }
#endif
  for (; i < n; ++i) {
    bool any = false;
    for (int r = 0; r < group; ++r) any = any || (x[r] && !(x[r][i] == 0.0f));
    if (!any) continue;
    ks[count] = i;
    for (int r = 0; r < group; ++r) vs[r][count] = x[r] ? x[r][i] : 0.0f;
    ++count;
  }
  return count;
}

// A dot product of length n: four vectors of lane sums, added lane by lane, the lanes then
// summed in order, and the last n mod W terms after them. The same bits wherever it runs.
inline float dot(const float* a, const float* b, int n) {
  V acc[4] = {vset(0.0f), vset(0.0f), vset(0.0f), vset(0.0f)};
  int k = 0;
  for (; k + 4 * W <= n; k += 4 * W)
    for (int j = 0; j < 4; ++j) acc[j] = vfma(vload(a + k + j * W), vload(b + k + j * W), acc[j]);
  for (int j = 0; k + W <= n; k += W, ++j) acc[j] = vfma(vload(a + k), vload(b + k), acc[j]);
  float lanes[W];
  vstore(lanes, vadd(vadd(acc[0], acc[1]), vadd(acc[2], acc[3])));
  float sum = 0.0f;
  for (int l = 0; l < W; ++l) sum += lanes[l];
  for (; k < n; ++k) sum = std::fma(a[k], b[k], sum);
  return sum;
}

// Per calling thread; grows to the largest product seen and is then reused.
struct Scratch {
  std::vector<float> dense, columns, values, out;
  std::vector<int32_t> ks, counts;
};
thread_local Scratch scratch;

template <class T>
T* sized(std::vector<T>& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}

inline int part_begin(int n, int parts, int p) { return int(int64_t(n) * p / parts); }

}  // namespace

double group_zero_fraction(const float* x, int rows, int cols, int ld, bool groups_of_columns) {
  if (rows <= 0 || cols <= 0) return 0;
  int64_t zeros = 0, cells = 0;  // counted without branches, so that the loops vectorise
  if (groups_of_columns) {
    // Whole rows, so the reads are contiguous: up to 32 of them spread over the matrix, every
    // group of four columns in each.
    const int samples = std::min(rows, 32), whole = cols / group * group;
    for (int s = 0; s < samples; ++s) {
      const float* r = x + int64_t(rows) * (2 * s + 1) / (2 * samples) * ld;
      for (int c = 0; c < whole; c += group)
        zeros += int((r[c] == 0.0f) & (r[c + 1] == 0.0f) & (r[c + 2] == 0.0f) & (r[c + 3] == 0.0f));
      bool tail = whole < cols;
      for (int c = whole; c < cols; ++c) tail = tail && r[c] == 0.0f;
      zeros += tail;
      cells += (cols + group - 1) / group;
    }
  } else {
    // Up to eight groups of four rows spread over the matrix (off the edges: images have empty
    // borders), every column of each. A last group of fewer rows repeats its last row.
    const int samples = std::min((rows + group - 1) / group, 8);
    for (int s = 0; s < samples; ++s) {
      const int g0 = std::min(rows - 1, int(int64_t(rows) * (2 * s + 1) / (2 * samples))) / group * group;
      const float* r[group];
      for (int i = 0; i < group; ++i) r[i] = x + int64_t(std::min(rows - 1, g0 + i)) * ld;
      for (int j = 0; j < cols; ++j)
        zeros += int((r[0][j] == 0.0f) & (r[1][j] == 0.0f) & (r[2][j] == 0.0f) & (r[3][j] == 0.0f));
      cells += cols;
    }
  }
  return double(zeros) / double(cells);
}

void sparse_gemm(const Gemm& g, bool sparse_a, int threads) {
  const int K = g.K;
  // S has `rows` rows of K; D is K x `width`; out (rows x width) is C, or C^T in scratch.
  const int rows = sparse_a ? g.M : g.N, width = sparse_a ? g.N : g.M;
  // D as stored, when it is: A op(B) with B not transposed (D = B), op(A) B with A transposed
  // (D = A as stored, K x M). Otherwise a transposed copy.
  const bool d_as_stored = sparse_a ? !g.tb : g.ta;
  const float* d_src = sparse_a ? g.B : g.A;
  const int64_t d_src_ld = sparse_a ? g.ldb : g.lda;
  float* d_copy = d_as_stored ? nullptr : sized(scratch.dense, int64_t(K) * width);
  const float* D = d_as_stored ? d_src : d_copy;
  const int64_t ldd = d_as_stored ? d_src_ld : width;
  const int64_t ldk = K + 16;  // room for a whole vector past a group's last entry
  const int groups = (rows + group - 1) / group;
  int32_t* ks = sized(scratch.ks, groups * ldk);
  float* vs = sized(scratch.values, int64_t(groups) * group * ldk);
  int32_t* counts = sized(scratch.counts, groups);
  float* bt = sparse_a ? nullptr : sized(scratch.columns, int64_t(g.N) * K);
  float* out = sparse_a ? g.C : sized(scratch.out, int64_t(rows) * width);
  const int64_t ldo = sparse_a ? g.N : width;

#pragma omp parallel num_threads(threads)
  {
    const int parts = omp_get_num_threads(), p = omp_get_thread_num();
    if (d_copy)  // D = the stored operand transposed: width x K stored, split by its rows
      transpose_rows(d_src, d_src_ld, part_begin(width, parts, p), part_begin(width, parts, p + 1), K, d_copy, ldd);
    // This thread's groups of sparse rows: the rows of A, or the columns of B (its part of B
    // transposed first), four at a time.
    const int g0 = part_begin(groups, parts, p), g1 = part_begin(groups, parts, p + 1);
    const int r0 = g0 * group, r1 = std::min(rows, g1 * group);
    if (!sparse_a) transpose_rows(g.B + r0, g.ldb, 0, K, r1 - r0, bt + int64_t(r0) * K, K);
    const float* s_rows = sparse_a ? g.A : bt;
    const int64_t lds = sparse_a ? g.lda : K;
    for (int gi = g0; gi < g1; ++gi) {
      const float* x[group];
      float* v[group];
      for (int r = 0; r < group; ++r) {
        const int row = gi * group + r;
        x[r] = row < rows ? s_rows + row * lds : nullptr;
        v[r] = vs + (int64_t(gi) * group + r) * ldk;
      }
      counts[gi] = group_nonzeros(x, K, ks + gi * ldk, v);
    }
    for (int r = r0; r < r1; ++r) {  // every row of out starts from the bias or zero
      float* o = out + r * ldo;
      if (!g.bias) std::fill(o, o + width, 0.0f);
      else if (sparse_a) std::copy(g.bias, g.bias + width, o);
      else std::fill(o, o + width, g.bias[r]);
    }
    if (d_copy) {
#pragma omp barrier
    }
    // Bands of columns outside, so that D's band (K x 256 floats) stays in cache.
    constexpr int band = 256;
    for (int c0 = 0; c0 < width; c0 += band)
      for (int gi = g0; gi < g1; ++gi) {
        Group s{ks + gi * ldk, {}, counts[gi]};
        float* o[group];
        for (int r = 0; r < group; ++r) {
          const int row = gi * group + r;
          s.v[r] = vs + (int64_t(gi) * group + r) * ldk;
          o[r] = row < rows ? out + row * ldo : nullptr;
        }
        group_times_dense(s, D, ldd, c0, std::min(width, c0 + band), o);
      }
    if (!sparse_a) transpose_rows(out, ldo, r0, r1, width, g.C, g.N);  // C^T's rows [r0, r1) -> C's columns
  }
}

// Masked products (sparse_gemm.h). Each thread takes a share of the columns of C: it zeroes
// them and lists, row by row, the rows each column keeps; then for each of its columns it
// holds that column of op(B) (a row of B^T, contiguous) and takes one dot product with each
// kept row of op(A), which stays in cache across the columns (the wta's [150, 784] gradient).
// op(A)'s rows and op(B)'s columns must be contiguous: a transposed A is copied first (all
// threads, then a barrier), an untransposed B column by column by the thread that owns them.
bool masked_gemm(const Gemm& g, const float* mask, double max_kept, int threads) {
  const int M = g.M, N = g.N, K = g.K;
  const int64_t cells = int64_t(M) * N;
  int64_t kept = 0;
  for (int64_t e = 0; e < cells; ++e) kept += mask[e] > 0.0f;  // NaN is not kept, as in relu_grad
  if (double(kept) > max_kept * double(cells)) return false;
  float* a_copy = g.ta ? sized(scratch.dense, int64_t(M) * K) : nullptr;
  float* b_copy = g.tb ? nullptr : sized(scratch.columns, int64_t(N) * K);
  const float* a_rows = g.ta ? a_copy : g.A;
  const int64_t lda = g.ta ? K : g.lda;
  const float* b_cols = g.tb ? g.B : b_copy;
  const int64_t ldb = g.tb ? g.ldb : K;
  int32_t* rows_of = sized(scratch.ks, cells);  // column j's kept rows at [j * M, j * M + count)
  int32_t* count = sized(scratch.counts, N);
#pragma omp parallel num_threads(threads)
  {
    const int parts = omp_get_num_threads(), p = omp_get_thread_num();
    const int j0 = part_begin(N, parts, p), j1 = part_begin(N, parts, p + 1);
    if (g.ta) transpose_rows(g.A, g.lda, part_begin(K, parts, p), part_begin(K, parts, p + 1), M, a_copy, K);
    if (!g.tb) transpose_rows(g.B + j0, g.ldb, 0, K, j1 - j0, b_copy + int64_t(j0) * K, K);
    for (int j = j0; j < j1; ++j) count[j] = 0;
    for (int i = 0; i < M; ++i) {
      const float* m = mask + int64_t(i) * N;
      float* c = g.C + int64_t(i) * N;
      for (int j = j0; j < j1; ++j) {
        c[j] = 0.0f;
        if (m[j] > 0.0f) rows_of[int64_t(j) * M + count[j]++] = i;
      }
    }
    if (g.ta) {
#pragma omp barrier
    }
    for (int j = j0; j < j1; ++j) {
      const float* b = b_cols + int64_t(j) * ldb;
      for (int e = 0; e < count[j]; ++e) {
        const int i = rows_of[int64_t(j) * M + e];
        g.C[int64_t(i) * N + j] = dot(a_rows + int64_t(i) * lda, b, K);
      }
    }
  }
  return true;
}

}  // namespace ag::cpu
