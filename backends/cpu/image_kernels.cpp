// Image kernels on the CPU (ops/image.h has the geometry). Four ways to run a convolution:
//
// Winograd F(2x2, 3x3) (stride 1, 3x3 filters, input and output channels multiples of 16:
// convdae's 32 -> 32 layers): see its section below.
//
// Direct (the other stride-1 layers with more than one input channel): each image's planes are
// copied zero-padded into flat rows so that every filter tap is one contiguous shift, and a
// register block of 6 output channels x 64 positions accumulates over all input channels and
// taps before it is stored (vectors through GCC's vector extension). The transpose is the same
// loop over the flipped, channel-swapped filters; the filter gradient keeps one vector of partial
// sums per tap for 3 output channels at a time (6 for the 2x2 phase filters).
//
// Strided (upconv's decoder): the same loops over the image's s^2 phase planes (below).
//
// Unfolded ("im2col") + OpenBLAS otherwise (a stride-1 layer reading one channel): image n's
// patches become the columns of cols [C kh kw, oh ow], and with the filters seen as a matrix
// W [F, C kh kw]:
//   conv2d              y_n = W cols_n (+ b)                     one product per image
//   conv_transpose2d    x_n = fold(W^T y_n) (+ b)                one product, then the adjoint of unfolding
//   conv2d_filter_grad  W   = sum_n y_n cols_n^T                 summed in a fixed order (below)
//
// Either way images are spread over threads, one image per task (one single-threaded OpenBLAS
// call), so a result does not depend on how many threads run it; the filter gradient sums fixed
// groups of 8 images, then the groups in order, so it does not either. docs/benchmarks.md has
// the per-layer measurements behind the choice, and oneDNN's times on the same layers.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu/loops.h"
#include "backends/cpu/vectors.h"
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

// A per-thread scratch buffer that only grows, so a run allocates nothing once the first has.
// Slot 0 is for the work of one thread task; slot 1 for what the calling thread prepares before
// a parallel loop and the tasks then read (the calling thread runs a task too, in slot 0); slot 2
// for a second such buffer made from slot 1's (Winograd's filters from the flipped ones).
template <class T, int Slot = 0>
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

// out[p, i, j] = bias[p] (or 0) + flat[p, i wp + j]: the h x w corner of each of `planes` planes
// computed on a padded width wp, `plane_len` apart, written once.
template <class T>
void crop_planes(const T* flat, int64_t plane_len, int64_t wp, int64_t planes, int64_t h, int64_t w, const T* bias,
                 T* out) {
  for (int64_t p = 0; p < planes; ++p) {
    const T b = bias ? bias[p] : T(0);
    for (int64_t i = 0; i < h; ++i) {
      const T* __restrict src = flat + p * plane_len + i * wp;
      T* __restrict dst = out + (p * h + i) * w;
      for (int64_t j = 0; j < w; ++j) dst[j] = b + src[j];
    }
  }
}

// ---- Direct convolutions: stride 1, few channels ----
// Every source plane is copied zero-padded into a flat buffer of width wp (plus kw spare zeros),
// so that filter tap (u, v) of output position k = i wp + j reads padded position k + u wp + v:
// one contiguous multiply-add over the whole plane per tap, which vectorises fully. Outputs are
// computed on the padded width and cropped. No unfolded copy (9 times the image for 3x3 filters).
constexpr int64_t flat_block = 32;  // output positions per register block

struct FlatPlanes {
  int64_t h, w, pad_h, pad_w, kh, kw;  // source planes, padding, filter
  int64_t hp() const { return h + 2 * pad_h; }
  int64_t wp() const { return w + 2 * pad_w; }
  int64_t oh() const { return hp() - kh + 1; }
  int64_t ow() const { return wp() - kw + 1; }
  // Outputs per plane on the padded width, rounded up to whole blocks (the tail is never read).
  int64_t out_len() const { return (oh() * wp() + flat_block - 1) / flat_block * flat_block; }
  // One padded plane with the spare zeros the last block's taps read.
  int64_t stride() const { return out_len() + (kh - 1) * wp() + kw; }
};

// Filter tap t = u kw + v reads the padded plane u wp + v positions after the output it adds to.
inline int64_t tap_offset(const FlatPlanes& f, int64_t t) { return t / f.kw * f.wp() + t % f.kw; }
constexpr int64_t max_direct_taps = 64;  // the direct loops' tap offsets live on the stack; larger filters unfold

template <class T>
void pad_planes(const FlatPlanes& f, const T* src, int64_t planes, T* dst) {
  std::fill(dst, dst + planes * f.stride(), T(0));
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r < f.h; ++r)
      std::copy(src + (p * f.h + r) * f.w, src + (p * f.h + r + 1) * f.w, dst + p * f.stride() + (r + f.pad_h) * f.wp() + f.pad_w);
}

// out[o, k] = sum_{s, t} k[o, s, t] padded[s, k + tap_offset(t)] for outputs o0 .. o0 + OB - 1, with
// tap t = (u, v) at offset u wp + v. A register block of OB outputs x NV vectors of positions
// from i0 accumulates over every source and tap before it is stored; each sum runs over s, then
// u, then v.
template <int OB, int NV, class T>
void correlate_span(const FlatPlanes& f, const T* __restrict padded, int64_t sources, const T* __restrict k,
                    const int64_t* offset, int64_t o0, int64_t i0, T* __restrict out) {
  constexpr int64_t lanes = vec_lanes<T>;
  const int64_t taps = f.kh * f.kw, len = f.out_len();
  Vec<T> acc[OB][NV];
  for (int ob = 0; ob < OB; ++ob)
    for (int n = 0; n < NV; ++n) acc[ob][n] = Vec<T>{};
  for (int64_t s = 0; s < sources; ++s) {
    const T* xs = padded + s * f.stride() + i0;
    const T* ks = k + (o0 * sources + s) * taps;
    for (int64_t t = 0; t < taps; ++t) {  // (a loop over u and v here ran 1.4-2x slower)
      Vec<T> x[NV];
      for (int n = 0; n < NV; ++n) {
        x[n] = load(xs + offset[t] + n * lanes);
        in_register(x[n]);
      }
      for (int ob = 0; ob < OB; ++ob) {
        const T wv = ks[ob * sources * taps + t];
        for (int n = 0; n < NV; ++n) acc[ob][n] += wv * x[n];
      }
    }
  }
  for (int ob = 0; ob < OB; ++ob)
    for (int n = 0; n < NV; ++n) store(out + (o0 + ob) * len + i0 + n * lanes, acc[ob][n]);
}

// OB outputs over the whole plane: spans of 64 positions (float; 6 x 4 accumulators and the 4
// image vectors fill 28 of the 32 vector registers), then of the 32 the length is a multiple of.
template <int OB, class T>
void correlate_block(const FlatPlanes& f, const T* padded, int64_t sources, const T* k, const int64_t* offset,
                     int64_t o0, T* out) {
  constexpr int nv = int(flat_block / vec_lanes<T>), wide = sizeof(T) == 4 ? 2 * nv : nv;
  const int64_t len = f.out_len();
  int64_t i0 = 0;
  for (; i0 + wide * vec_lanes<T> <= len; i0 += wide * vec_lanes<T>)
    correlate_span<OB, wide>(f, padded, sources, k, offset, o0, i0, out);
  for (; i0 < len; i0 += flat_block) correlate_span<OB, nv>(f, padded, sources, k, offset, o0, i0, out);
}

template <class T>
void correlate_flat(const FlatPlanes& f, const T* padded, int64_t sources, const T* k, T* out, int64_t outs) {
  int64_t offset[max_direct_taps];
  for (int64_t t = 0; t < f.kh * f.kw; ++t) offset[t] = tap_offset(f, t);
  int64_t o = 0;
  auto blocks = [&]<int OB>(auto self) {  // 6 outputs at a time while 6 fit, then fewer
    for (; o + OB <= outs; o += OB) correlate_block<OB>(f, padded, sources, k, offset, o, out);
    if constexpr (OB > 1) self.template operator()<OB - 1>(self);
  };
  blocks.template operator()<6>(blocks);
}

// k[o, s, u, v] += sum_{n, i} g_n[o, i] padded_n[s, i + u wp + v] over `images` images (their padded
// planes `image_stride` apart, their maps `map_stride` apart; g on the padded width, zero past
// ow): for OB outputs and one source at a time, every tap's partial sums in one vector
// each (registers) over all the images, then each tap's lanes added in order.
template <int OB, int KH, int KW, class T>
void correlate_filters_block(const FlatPlanes& f, const T* __restrict padded, int64_t image_stride, int64_t s,
                             const T* __restrict g, int64_t map_stride, int64_t images, int64_t o, int64_t sources,
                             T* __restrict k) {
  constexpr int64_t lanes = vec_lanes<T>;
  const int64_t len = f.out_len(), wp = f.wp();
  Vec<T> acc[OB][KH * KW];
  for (int ob = 0; ob < OB; ++ob)
    for (int t = 0; t < KH * KW; ++t) acc[ob][t] = Vec<T>{};
  for (int64_t n = 0; n < images; ++n) {
    // One pointer per filter row; the column is a constant displacement (KH, not KH x KW, registers).
    const T* row[KH];
    for (int u = 0; u < KH; ++u) row[u] = padded + n * image_stride + s * f.stride() + u * wp;
    const T* gn = g + n * map_stride + o * len;
    for (int64_t i0 = 0; i0 < len; i0 += lanes) {
      Vec<T> gv[OB];
      for (int ob = 0; ob < OB; ++ob) gv[ob] = load(gn + ob * len + i0);
      for (int u = 0; u < KH; ++u)
        for (int v = 0; v < KW; ++v) {
          Vec<T> x = load(row[u] + v + i0);
          in_register(x);
          for (int ob = 0; ob < OB; ++ob) acc[ob][u * KW + v] += gv[ob] * x;
        }
    }
  }
  for (int ob = 0; ob < OB; ++ob)
    for (int t = 0; t < KH * KW; ++t) {
      T total = 0;
      for (int64_t l = 0; l < lanes; ++l) total += acc[ob][t][l];
      k[((o + ob) * sources + s) * KH * KW + t] += total;
    }
}

// The filter gradient of `images` images at once (layout as above), into k [outs, sources, kh, kw].
template <class T>
void correlate_flat_filters(const FlatPlanes& f, const T* __restrict padded, int64_t sources, const T* __restrict g,
                            int64_t outs, int64_t images, T* __restrict k) {
  constexpr int64_t lanes = 16;
  const int64_t len = f.out_len(), taps = f.kh * f.kw, image_stride = sources * f.stride(), map_stride = outs * len;
  int64_t offset[max_direct_taps];
  for (int64_t t = 0; t < taps; ++t) offset[t] = tap_offset(f, t);
  int64_t o = 0;
  // OB outputs at a time while OB fit, then fewer: OB x TAPS accumulators (27 or 24 of the 32
  // vector registers for the widest block) per tap's load of the image.
  auto blocks = [&]<int OB, int KH, int KW>(auto self) {
    for (; o + OB <= outs; o += OB)
      for (int64_t s = 0; s < sources; ++s)
        correlate_filters_block<OB, KH, KW>(f, padded, image_stride, s, g, map_stride, images, o, sources, k);
    if constexpr (OB > 1) self.template operator()<OB - 1, KH, KW>(self);
  };
  if (f.kh == 3 && f.kw == 3) blocks.template operator()<3, 3, 3>(blocks);  // 3x3 filters
  if (f.kh == 2 && f.kw == 2) blocks.template operator()<6, 2, 2>(blocks);  // 4x4 filters at stride 2, as phases (below)
  for (; o < outs; ++o)
    for (int64_t s = 0; s < sources; ++s)
      for (int64_t t = 0; t < taps; ++t) {
        T acc[lanes] = {};
        for (int64_t n = 0; n < images; ++n) {
          const T* __restrict x = padded + n * image_stride + s * f.stride() + offset[t];
          const T* __restrict go = g + n * map_stride + o * len;
          for (int64_t i = 0; i < len; i += lanes)
            for (int64_t l = 0; l < lanes; ++l) acc[l] += go[i + l] * x[i + l];
        }
        T total = 0;
        for (int64_t l = 0; l < lanes; ++l) total += acc[l];
        k[(o * sources + s) * taps + t] += total;
      }
}

// The direct loops beat unfolding + OpenBLAS on every stride-1 layer of the conv models but the
// forward and input-gradient products of those that read a single channel (the first layer, whose
// unfolded image is just 9 rows); the filter gradient of that layer runs direct too. The products
// are too thin for OpenBLAS (K = 8..32 channels) and the unfolded copy costs more than the
// arithmetic (measured per layer: docs/benchmarks.md). Padding must stay below the filter size,
// so that the transpose's padding kh - 1 - p is not negative.
std::atomic<bool> direct_allowed{true};
bool runs_direct(const ConvGeometry& g, bool filter_gradient = false) {
  return direct_allowed && g.stride == 1 && g.pad < g.kh && g.pad < g.kw && (g.c > 1 || filter_gradient) &&
         g.kh * g.kw <= max_direct_taps;
}

// ---- Strided convolutions as stride-1 ones over phase planes ----
// With stride s, tap (u, v) = (s a + r, s b + q) of output (i, j) reads padded pixel (s (i + a) + r,
// s (j + b) + q), which is pixel (i + a, j + b) of phase plane (r, q): the padded image's rows r,
// r + s, ... and columns q, q + s, .... A strided convolution is therefore a stride-1 one whose
// sources are the C s^2 phase planes and whose filters are the ceil(kh / s) x ceil(kw / s)
// sub-filters w[., ., s a + r, s b + q], and it runs on the direct loops above.
struct Phases {
  int64_t s, ka, kb, ph, pw;  // stride, sub-filter size, phase plane size
  int64_t planes(int64_t channels) const { return channels * s * s; }
};
Phases phases_of(const ConvGeometry& g) {
  const int64_t s = g.stride;
  return Phases{s, (g.kh + s - 1) / s, (g.kw + s - 1) / s, (g.h + 2 * g.pad + s - 1) / s, (g.w + 2 * g.pad + s - 1) / s};
}

// The phase planes of one image x [c, h, w], laid out as FlatPlanes{ph, pw, 0, 0, ka, kb} sources.
// Plane pixel m of phase r reads image row s m + r - pad: the range of m that lands inside [0, len).
struct PhaseRange {
  int64_t begin, end;
};
inline PhaseRange phase_range(int64_t phase, int64_t s, int64_t pad, int64_t len, int64_t plane_len) {
  const int64_t lo = pad - phase, hi = len - 1 + pad - phase;  // s m must lie in [lo, hi]
  if (hi < 0) return {0, 0};
  const int64_t begin = lo > 0 ? (lo + s - 1) / s : 0;
  return {begin, std::max(begin, std::min(plane_len, hi / s + 1))};
}

template <class T>
void phase_planes(const ConvGeometry& g, const Phases& P, const FlatPlanes& fp, const T* x, T* dst) {
  std::fill(dst, dst + P.planes(g.c) * fp.stride(), T(0));
  PhaseRange rows[max_direct_taps], cols[max_direct_taps];  // s^2 <= the direct loops' taps
  for (int64_t r = 0; r < P.s; ++r) {
    rows[r] = phase_range(r, P.s, g.pad, g.h, P.ph);
    cols[r] = phase_range(r, P.s, g.pad, g.w, P.pw);
  }
  for (int64_t c = 0; c < g.c; ++c)  // one channel at a time: its pixels stay in cache for the s^2 phases
    for (int64_t r = 0; r < P.s; ++r)
      for (int64_t q = 0; q < P.s; ++q) {
        T* plane = dst + ((c * P.s + r) * P.s + q) * fp.stride();
        for (int64_t m = rows[r].begin; m < rows[r].end; ++m) {
          const T* src = x + (c * g.h + P.s * m + r - g.pad) * g.w + q - g.pad;  // column s n of it is pixel n
          for (int64_t n = cols[q].begin; n < cols[q].end; ++n) plane[m * fp.wp() + n] = src[P.s * n];
        }
      }
}

// w[f, c, s a + r, s b + q] as k[f, (c, r, q), a, b] (flipped = false: for the forward product and
// the filter gradient) or, flipped and with outputs and sources swapped, as k[(c, r, q), f, ka - 1 - a,
// kb - 1 - b] (for the transpose); zero where s a + r or s b + q falls past the filter. At stride 1
// the flipped filters are the transpose's as a correlation: k[c, f, u, v] = w[f, c, kh-1-u, kw-1-v].
// Written into the calling thread's slot-1 scratch, which the parallel loop after it reads.
template <class T>
const T* phase_filters(const ConvGeometry& g, const Phases& P, const T* w, bool flipped) {
  const int64_t sources = P.planes(g.c), taps = P.ka * P.kb;
  T* k = scratch<T, 1>(size_t(g.f * sources * taps));
  std::fill(k, k + g.f * sources * taps, T(0));
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t u = 0; u < g.kh; ++u)
        for (int64_t v = 0; v < g.kw; ++v) {
          const int64_t src = (c * P.s + u % P.s) * P.s + v % P.s, a = u / P.s, b = v / P.s;
          const size_t at = flipped ? size_t(((src * g.f + f) * P.ka + (P.ka - 1 - a)) * P.kb + (P.kb - 1 - b))
                                    : size_t(((f * sources + src) * P.ka + a) * P.kb + b);
          k[at] = w[((f * g.c + c) * g.kh + u) * g.kw + v];
        }
  return k;
}

// Strided products run as phases where the direct loops apply (every strided layer of upconv).
bool runs_phases(const ConvGeometry& g) {
  if (!direct_allowed || g.stride < 2 || g.kh * g.kw > max_direct_taps) return false;
  const Phases P = phases_of(g);
  return P.ph - P.ka + 1 >= g.oh && P.pw - P.kb + 1 >= g.ow;
}

// ---- Winograd F(2x2, 3x3): stride-1 3x3 layers whose channels come in multiples of 16 ----
// Lavin & Gray's minimal filtering: a 2x2 output tile of a 3x3 correlation is A^T [U ⊙ V] A, with
// U = G g G^T the filter and V = B^T d B the tile's 4x4 input patch, each transformed to 4x4.
// Summed over the channels, the 16 elementwise products become 16 small matrix products
//   M[ξ][t][f] = sum_c V[ξ][t][c] U[ξ][c][f]      (ξ = the 16 transformed positions, t = tiles)
// with 16 multiplies per tile and channel pair instead of the direct loops' 36 (2.25x fewer).
// The filter gradient is the same identity read backwards: dU[ξ][f][c] = sum_t (A dY A^T)[ξ][t][f]
// V[ξ][t][c], then dg = G^T dU G. Tiles are channel-last (each vector: 16 channels of one pixel),
// so the transforms are vector adds and the products are register blocks, as above. The sums
// differ from the direct loops' (each output is a sum over the 16 transformed products, not over
// the 9 taps): the tests bound the error accordingly (tests/core/test_image.cpp).
constexpr int64_t wino_chunk = 48;  // tiles transformed and multiplied at a time (their buffers stay in L2)

struct WinoTiles {
  int64_t th, tw;  // tiles down and across: ceil(oh / 2), ceil(ow / 2)
  int64_t count() const { return th * tw; }
  int64_t ph() const { return 2 * th + 2; }  // the padded input the tiles' 4x4 patches read
  int64_t pw() const { return 2 * tw + 2; }
};

bool runs_winograd(const ConvGeometry& g) {
  return direct_allowed && winograd_shaped(g.c, g.f, g.kh, g.kw, g.stride, g.pad);
}

// x [c, h, w] as channel-last rows X [rows, cols, c], shifted down and right by pad, zero
// elsewhere: transposed to [h w, c] in `tmp`, then copied row by row.
template <class T>
void channels_last(const T* x, int64_t c, int64_t h, int64_t w, int64_t pad, int64_t rows, int64_t cols, T* tmp, T* X) {
  transpose(x, c, h * w, h * w, tmp, c);
  std::fill(X, X + rows * cols * c, T(0));
  for (int64_t i = 0; i < h; ++i) std::copy(tmp + i * w * c, tmp + (i + 1) * w * c, X + ((i + pad) * cols + pad) * c);
}

// V[ξ][t - t0][c] = (B^T d_t B)[ξ] for tiles t0 .. t1 - 1 of the padded channel-last image X.
template <class T>
void wino_input(const WinoTiles& W, const T* X, int64_t c, int64_t t0, int64_t t1, T* V) {
  constexpr int64_t L = vec_lanes<T>;
  const int64_t n = t1 - t0, row = W.pw() * c;
  for (int64_t t = t0; t < t1; ++t) {
    const T* p = X + 2 * (t / W.tw) * row + 2 * (t % W.tw) * c;
    for (int64_t c0 = 0; c0 < c; c0 += L) {
      Vec<T> d[4][4], e[4][4];
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s) d[r][s] = load(p + r * row + s * c + c0);
      for (int s = 0; s < 4; ++s) {
        e[0][s] = d[0][s] - d[2][s];
        e[1][s] = d[1][s] + d[2][s];
        e[2][s] = d[2][s] - d[1][s];
        e[3][s] = d[1][s] - d[3][s];
      }
      for (int r = 0; r < 4; ++r) {
        const Vec<T> v[4] = {e[r][0] - e[r][2], e[r][1] + e[r][2], e[r][2] - e[r][1], e[r][1] - e[r][3]};
        for (int s = 0; s < 4; ++s) store(V + ((r * 4 + s) * n + t - t0) * c + c0, v[s]);
      }
    }
  }
}

// Q[ξ][t - t0][f] = (A dY_t A^T)[ξ] for the 2x2 map tiles of the channel-last map Y [2 th, 2 tw, f].
template <class T>
void wino_map(const WinoTiles& W, const T* Y, int64_t f, int64_t t0, int64_t t1, T* Q) {
  constexpr int64_t L = vec_lanes<T>;
  const int64_t n = t1 - t0, row = 2 * W.tw * f;
  for (int64_t t = t0; t < t1; ++t) {
    const T* p = Y + 2 * (t / W.tw) * row + 2 * (t % W.tw) * f;
    for (int64_t f0 = 0; f0 < f; f0 += L) {
      Vec<T> q[4][2];
      for (int b = 0; b < 2; ++b) {
        const Vec<T> d0 = load(p + b * f + f0), d1 = load(p + row + b * f + f0);
        q[0][b] = d0;
        q[1][b] = d0 + d1;
        q[2][b] = d0 - d1;
        q[3][b] = -d1;
      }
      for (int r = 0; r < 4; ++r) {
        const Vec<T> v[4] = {q[r][0], q[r][0] + q[r][1], q[r][0] - q[r][1], -q[r][1]};
        for (int s = 0; s < 4; ++s) store(Q + ((r * 4 + s) * n + t - t0) * f + f0, v[s]);
      }
    }
  }
}

// Y[2 i + a][2 j + b][f] = bias[f] + (A^T M_t A)[a][b] for tiles t0 .. t1 - 1 (Y is [2 th, 2 tw, f]).
template <class T>
void wino_output(const WinoTiles& W, const T* M, int64_t f, int64_t t0, int64_t t1, const T* bias, T* Y) {
  constexpr int64_t L = vec_lanes<T>;
  const int64_t n = t1 - t0, row = 2 * W.tw * f;
  for (int64_t t = t0; t < t1; ++t) {
    T* p = Y + 2 * (t / W.tw) * row + 2 * (t % W.tw) * f;
    for (int64_t f0 = 0; f0 < f; f0 += L) {
      Vec<T> m[4][4], r[2][4];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) m[i][j] = load(M + ((i * 4 + j) * n + t - t0) * f + f0);
      for (int j = 0; j < 4; ++j) {
        r[0][j] = m[0][j] + m[1][j] + m[2][j];
        r[1][j] = m[1][j] - m[2][j] - m[3][j];
      }
      const Vec<T> b = bias ? load(bias + f0) : Vec<T>{};
      for (int a = 0; a < 2; ++a) {
        store(p + a * row + f0, b + (r[a][0] + r[a][1] + r[a][2]));
        store(p + a * row + f + f0, b + (r[a][1] - r[a][2] - r[a][3]));
      }
    }
  }
}

// U[ξ][s][o] = (G k[o, s] G^T)[ξ] for filters k [outs, sources, 3, 3], written into the calling
// thread's slot-2 scratch (slot 1 may hold k itself), which the parallel loop after it reads.
template <class T>
const T* wino_filters(const T* k, int64_t outs, int64_t sources) {
  T* U = scratch<T, 2>(size_t(16 * outs * sources));
  for (int64_t o = 0; o < outs; ++o)
    for (int64_t s = 0; s < sources; ++s) {
      const T* g = k + (o * sources + s) * 9;
      T a[4][3];
      for (int j = 0; j < 3; ++j) {
        a[0][j] = g[j];
        a[1][j] = T(0.5) * (g[j] + g[3 + j] + g[6 + j]);
        a[2][j] = T(0.5) * (g[j] - g[3 + j] + g[6 + j]);
        a[3][j] = g[6 + j];
      }
      for (int r = 0; r < 4; ++r) {
        const T u[4] = {a[r][0], T(0.5) * (a[r][0] + a[r][1] + a[r][2]), T(0.5) * (a[r][0] - a[r][1] + a[r][2]), a[r][2]};
        for (int q = 0; q < 4; ++q) U[((r * 4 + q) * sources + s) * outs + o] = u[q];
      }
    }
  return U;
}

// out[i][j..] (FV vectors) = sum_k a[i][k] b[k][j..] for RB rows, with a[i][k] at a[i ai + k ak]
// (either layout: the filter gradient reads Q[t][f] as its a[f][t]), b [K, ldb], out rows ldo apart:
// RB x FV accumulators, each b vector loaded once per k and each a element broadcast.
// add = true adds to what out holds (the filter gradient's sum over images).
template <int RB, int FV, class T>
void broadcast_block(const T* __restrict a, int64_t ai, int64_t ak, const T* __restrict b, int64_t ldb, int64_t K,
                     T* __restrict out, int64_t ldo, bool add) {
  constexpr int64_t L = vec_lanes<T>;
  Vec<T> acc[RB][FV];
  for (int i = 0; i < RB; ++i)
    for (int j = 0; j < FV; ++j) acc[i][j] = add ? load(out + i * ldo + j * L) : Vec<T>{};
  for (int64_t k = 0; k < K; ++k) {
    Vec<T> bv[FV];
    for (int j = 0; j < FV; ++j) {
      bv[j] = load(b + k * ldb + j * L);
      in_register(bv[j]);
    }
    for (int i = 0; i < RB; ++i) {
      const T av = a[i * ai + k * ak];
      for (int j = 0; j < FV; ++j) acc[i][j] += av * bv[j];
    }
  }
  for (int i = 0; i < RB; ++i)
    for (int j = 0; j < FV; ++j) store(out + i * ldo + j * L, acc[i][j]);
}

// out [rows, cols] (+)= a [rows, K] b [K, cols] (a[i][k] at a[i ai + k ak]), cols a multiple of
// the vector length: 12 rows x 2 vectors at a time, then fewer rows, then 1 vector.
template <class T>
void broadcast_product(const T* a, int64_t ai, int64_t ak, const T* b, int64_t K, int64_t rows, int64_t cols, T* out,
                       bool add) {
  constexpr int64_t L = vec_lanes<T>;
  int64_t j0 = 0;
  auto strip = [&]<int FV>() {
    int64_t i = 0;
    auto blocks = [&]<int RB>(auto self) {
      for (; i + RB <= rows; i += RB)
        broadcast_block<RB, FV>(a + i * ai, ai, ak, b + j0, cols, K, out + i * cols + j0, cols, add);
      if constexpr (RB > 1) self.template operator()<RB - 1>(self);
    };
    blocks.template operator()<12>(blocks);
  };
  for (; j0 + 2 * L <= cols; j0 += 2 * L) strip.template operator()<2>();
  for (; j0 < cols; j0 += L) strip.template operator()<1>();
}

// One image: `sources` planes [h, w] zero-padded by pad, correlated with the transformed filters
// U [16, sources, outs] into out [outs, oh, ow] with the bias.
template <class T>
void winograd_correlation(int64_t h, int64_t w, int64_t pad, int64_t oh, int64_t ow, const T* image, int64_t sources,
                          const T* U, int64_t outs, const T* bias, T* out) {
  const WinoTiles W{(oh + 1) / 2, (ow + 1) / 2};
  const int64_t x_len = W.ph() * W.pw() * sources, y_len = 4 * W.count() * outs;
  const int64_t tmp_len = std::max(h * w * sources, oh * ow * outs);
  T* X = scratch<T>(size_t(x_len + y_len + tmp_len + 16 * wino_chunk * (sources + outs)));
  T *Y = X + x_len, *tmp = Y + y_len, *V = tmp + tmp_len, *M = V + 16 * wino_chunk * sources;
  channels_last(image, sources, h, w, pad, W.ph(), W.pw(), tmp, X);
  for (int64_t t0 = 0; t0 < W.count(); t0 += wino_chunk) {
    const int64_t t1 = std::min(W.count(), t0 + wino_chunk), n = t1 - t0;
    wino_input(W, X, sources, t0, t1, V);
    for (int xi = 0; xi < 16; ++xi)
      broadcast_product(V + xi * n * sources, sources, 1, U + xi * sources * outs, sources, n, outs, M + xi * n * outs,
                        false);
    wino_output(W, M, outs, t0, t1, bias, Y);
  }
  for (int64_t i = 0; i < oh; ++i)  // cropped to [oh ow, outs], then transposed
    std::copy(Y + i * 2 * W.tw * outs, Y + (i * 2 * W.tw + ow) * outs, tmp + i * ow * outs);
  transpose(tmp, oh * ow, outs, outs, out, oh * ow);
}

// The filter gradient of images n0 .. n1 - 1 into acc [f, c, 3, 3] (overwritten).
template <class T>
void winograd_filter_grad(const ConvGeometry& g, const T* x, const T* y, int64_t n0, int64_t n1, T* acc) {
  const WinoTiles W{(g.oh + 1) / 2, (g.ow + 1) / 2};
  const int64_t x_len = W.ph() * W.pw() * g.c, y_len = 4 * W.count() * g.f, du_len = 16 * g.f * g.c;
  const int64_t tmp_len = std::max(g.image_plane() * g.c, g.map_plane() * g.f);
  T* X = scratch<T>(size_t(x_len + y_len + du_len + tmp_len + 16 * wino_chunk * (g.c + g.f)));
  T *Y = X + x_len, *dU = Y + y_len, *tmp = dU + du_len, *V = tmp + tmp_len, *Q = V + 16 * wino_chunk * g.c;
  for (int64_t n = n0; n < n1; ++n) {
    channels_last(x + n * g.c * g.image_plane(), g.c, g.h, g.w, g.pad, W.ph(), W.pw(), tmp, X);
    channels_last(y + n * g.f * g.map_plane(), g.f, g.oh, g.ow, 0, 2 * W.th, 2 * W.tw, tmp, Y);  // zero past the map
    for (int64_t t0 = 0; t0 < W.count(); t0 += wino_chunk) {
      const int64_t t1 = std::min(W.count(), t0 + wino_chunk), m = t1 - t0;
      wino_input(W, X, g.c, t0, t1, V);
      wino_map(W, Y, g.f, t0, t1, Q);
      for (int xi = 0; xi < 16; ++xi)  // dU[ξ] [f, c] += Q[ξ]^T [f, t] V[ξ] [t, c]
        broadcast_product(Q + xi * m * g.f, 1, g.f, V + xi * m * g.c, m, g.f, g.c, dU + xi * g.f * g.c,
                          n > n0 || t0 > 0);
    }
  }
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t c = 0; c < g.c; ++c) {  // dg = G^T dU G
      T d[4][4], b[3][4];
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < 4; ++q) d[r][q] = dU[((r * 4 + q) * g.f + f) * g.c + c];
      for (int q = 0; q < 4; ++q) {
        b[0][q] = d[0][q] + T(0.5) * (d[1][q] + d[2][q]);
        b[1][q] = T(0.5) * (d[1][q] - d[2][q]);
        b[2][q] = T(0.5) * (d[1][q] + d[2][q]) + d[3][q];
      }
      T* out = acc + (f * g.c + c) * 9;
      for (int k = 0; k < 3; ++k) {
        out[k * 3 + 0] = b[k][0] + T(0.5) * (b[k][1] + b[k][2]);
        out[k * 3 + 1] = T(0.5) * (b[k][1] - b[k][2]);
        out[k * 3 + 2] = T(0.5) * (b[k][1] + b[k][2]) + b[k][3];
      }
    }
}

// One image through the direct loops: its `sources` planes zero-padded, correlated with k into
// `outs` flat planes (correlate_flat writes every position), cropped into out with the bias.
template <class T>
void direct_correlation(const FlatPlanes& fp, const T* image, int64_t sources, const T* k, int64_t outs, const T* bias,
                        T* out) {
  T* padded = scratch<T>(size_t(sources * fp.stride() + outs * fp.out_len()));
  T* flat = padded + sources * fp.stride();
  pad_planes(fp, image, sources, padded);
  correlate_flat(fp, padded, sources, k, flat, outs);
  crop_planes(flat, fp.out_len(), fp.wp(), outs, fp.oh(), fp.ow(), bias, out);
}

template <class T>
void conv2d(const KernelCall& c) {
  const ConvGeometry g = conv_geometry(c.in[0].shape, c.in[1].shape, c.out.shape, c.node->attrs);
  const T *x = c.in[0].ptr<T>(), *w = c.in[1].ptr<T>(), *b = c.nin == 3 ? c.in[2].ptr<T>() : nullptr;
  T* y = c.out.ptr<T>();
  const bool identity = unfold_is_identity(g), direct = runs_direct(g), phased = runs_phases(g);
  const bool winograd = runs_winograd(g);
  const Phases P = phases_of(g);
  const T* kp = phased ? phase_filters(g, P, w, false) : nullptr;
  const T* U = winograd ? wino_filters(w, g.f, g.c) : nullptr;
#pragma omp parallel for schedule(static) if (g.n > 1)
  for (int64_t n = 0; n < g.n; ++n) {
    const T* xn = x + n * g.c * g.image_plane();
    T* yn = y + n * g.f * g.map_plane();
    if (winograd) {
      winograd_correlation(g.h, g.w, g.pad, g.oh, g.ow, xn, g.c, U, g.f, b, yn);
      continue;
    }
    if (phased) {
      const FlatPlanes fp{P.ph, P.pw, 0, 0, P.ka, P.kb};
      T* planes = scratch<T>(size_t(P.planes(g.c) * fp.stride() + g.f * fp.out_len()));
      T* flat = planes + P.planes(g.c) * fp.stride();
      phase_planes(g, P, fp, xn, planes);
      correlate_flat(fp, planes, P.planes(g.c), kp, flat, g.f);
      crop_planes(flat, fp.out_len(), fp.wp(), g.f, g.oh, g.ow, b, yn);
      continue;
    }
    if (direct) {
      direct_correlation(FlatPlanes{g.h, g.w, g.pad, g.pad, g.kh, g.kw}, xn, g.c, w, g.f, b, yn);
      continue;
    }
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
  const bool identity = unfold_is_identity(g), direct = runs_direct(g), phased = runs_phases(g);
  const Phases P = phases_of(g);
  const bool winograd = runs_winograd(g);
  const T* kp = phased || direct || winograd ? phase_filters(g, P, w, true) : nullptr;  // flipped, at stride 1
  const T* U = winograd ? wino_filters(kp, g.c, g.f) : nullptr;
#pragma omp parallel for schedule(static) if (g.n > 1)
  for (int64_t n = 0; n < g.n; ++n) {
    const T* yn = y + n * g.f * g.map_plane();
    T* xn = x + n * g.c * g.image_plane();
    if (winograd) {  // the map padded by 2 - p, correlated with the flipped filters
      winograd_correlation(g.oh, g.ow, 2 - g.pad, g.h, g.w, yn, g.f, U, g.c, b, xn);
      continue;
    }
    if (direct) {  // the map padded by k - 1 - p, correlated with the flipped filters
      direct_correlation(FlatPlanes{g.oh, g.ow, g.kh - 1 - g.pad, g.kw - 1 - g.pad, g.kh, g.kw}, yn, g.f, kp, g.c, b, xn);
      continue;
    }
    if (phased) {  // each phase plane of the padded image is a stride-1 transpose of the map
      const FlatPlanes fp{g.oh, g.ow, P.ka - 1, P.kb - 1, P.ka, P.kb};
      T* padded = scratch<T>(size_t(g.f * fp.stride() + P.planes(g.c) * fp.out_len()));
      T* flat = padded + g.f * fp.stride();
      pad_planes(fp, yn, g.f, padded);
      correlate_flat(fp, padded, g.f, kp, flat, P.planes(g.c));
      // Pixel (i, j) is pixel ((i + p) / s, (j + p) / s) of phase plane ((i + p) % s, (j + p) % s):
      // each row and phase column walked with stride s, from the first pixel of its phase, written
      // once (bias added); pixels past the phase planes (if any) get the bias alone.
      int64_t first[max_direct_taps];  // s <= 8 here (s^2 <= the direct loops' taps)
      for (int64_t q = 0; q < P.s; ++q) first[q] = ((q - g.pad) % P.s + P.s) % P.s;
      const int64_t rows = std::min(g.h, fp.oh() * P.s - g.pad), cols = std::min(g.w, fp.ow() * P.s - g.pad);
      for (int64_t ch = 0; ch < g.c; ++ch) {
        const T bias = b ? b[ch] : T(0);
        T* plane = xn + ch * g.image_plane();
        for (int64_t i = 0; i < g.h; ++i)
          std::fill(plane + i * g.w + (i < rows ? cols : 0), plane + (i + 1) * g.w, bias);
        for (int64_t r = 0; r < P.s; ++r)
          for (int64_t i = first[r], m = (first[r] + g.pad) / P.s; i < rows; i += P.s, ++m)
            for (int64_t q = 0; q < P.s; ++q) {
              const T* src = flat + ((ch * P.s + r) * P.s + q) * fp.out_len() + m * fp.wp() + (first[q] + g.pad) / P.s;
              T* dst = plane + i * g.w + first[q];
              for (int64_t k = 0; k * P.s < cols - first[q]; ++k) dst[k * P.s] = src[k] + bias;
            }
      }
      continue;
    }
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
  T* partial = scratch<T, 1>(size_t(groups * size));
  const bool identity = unfold_is_identity(g), direct = runs_direct(g, true), phased = runs_phases(g);
  const bool winograd = runs_winograd(g);
  const Phases P = phases_of(g);
#pragma omp parallel for schedule(static) if (groups > 1)
  for (int64_t k = 0; k < groups; ++k) {
    T* acc = partial + k * size;
    const int64_t n0 = k * filter_grad_group, n1 = std::min(g.n, (k + 1) * filter_grad_group);
    if (winograd) {
      winograd_filter_grad(g, x, y, n0, n1, acc);
      continue;
    }
    if (phased) {  // the sub-filters' gradients over the phase planes, then put back in place
      const FlatPlanes fp{P.ph, P.pw, 0, 0, P.ka, P.kb};
      const int64_t sources = P.planes(g.c), image_len = sources * fp.stride(), map_len = g.f * fp.out_len();
      const int64_t sub = g.f * sources * P.ka * P.kb;
      T* planes = scratch<T>(size_t((n1 - n0) * (image_len + map_len) + sub));
      T* gflat = planes + (n1 - n0) * image_len;
      T* kp = gflat + (n1 - n0) * map_len;
      std::fill(gflat, kp + sub, T(0));
      for (int64_t n = n0; n < n1; ++n) {
        phase_planes(g, P, fp, x + n * g.c * g.image_plane(), planes + (n - n0) * image_len);
        const T* yn = y + n * g.f * g.map_plane();
        for (int64_t f = 0; f < g.f; ++f)
          for (int64_t i = 0; i < g.oh; ++i)
            std::copy(yn + (f * g.oh + i) * g.ow, yn + (f * g.oh + i + 1) * g.ow,
                      gflat + (n - n0) * map_len + f * fp.out_len() + i * fp.wp());
      }
      correlate_flat_filters(fp, planes, sources, gflat, g.f, n1 - n0, kp);
      for (int64_t f = 0; f < g.f; ++f)
        for (int64_t ch = 0; ch < g.c; ++ch)
          for (int64_t u = 0; u < g.kh; ++u)
            for (int64_t v = 0; v < g.kw; ++v) {
              const int64_t src = (ch * P.s + u % P.s) * P.s + v % P.s;
              acc[((f * g.c + ch) * g.kh + u) * g.kw + v] = kp[((f * sources + src) * P.ka + u / P.s) * P.kb + v / P.s];
            }
      continue;
    }
    if (direct) {  // the group's images padded side by side, then one pass of register blocks over all of them
      const FlatPlanes fp{g.h, g.w, g.pad, g.pad, g.kh, g.kw};
      const int64_t image_len = g.c * fp.stride(), map_len = g.f * fp.out_len();
      T* padded = scratch<T>(size_t((n1 - n0) * (image_len + map_len)));
      T* gflat = padded + (n1 - n0) * image_len;
      std::fill(gflat, gflat + (n1 - n0) * map_len, T(0));  // zero past ow on the padded width
      for (int64_t n = n0; n < n1; ++n) {
        pad_planes(fp, x + n * g.c * g.image_plane(), g.c, padded + (n - n0) * image_len);
        const T* yn = y + n * g.f * g.map_plane();
        for (int64_t f = 0; f < g.f; ++f)
          for (int64_t i = 0; i < g.oh; ++i)
            std::copy(yn + (f * g.oh + i) * g.ow, yn + (f * g.oh + i + 1) * g.ow,
                      gflat + (n - n0) * map_len + f * fp.out_len() + i * fp.wp());
      }
      std::fill(acc, acc + size, T(0));
      correlate_flat_filters(fp, padded, g.c, gflat, g.f, n1 - n0, acc);
      continue;
    }
    for (int64_t n = n0; n < n1; ++n) {
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
  std::copy(partial, partial + size, out);
  for (int64_t k = 1; k < groups; ++k)
    for (int64_t e = 0; e < size; ++e) out[e] += partial[size_t(k * size + e)];
}

// Pooling windows' bounds along one axis, clipped to the image: window i covers [lo(i), hi(i)).
struct WindowBounds {
  int64_t len, kernel, stride, pad;
  int64_t lo(int64_t i) const { return std::max<int64_t>(i * stride - pad, 0); }
  int64_t hi(int64_t i) const { return std::min(i * stride - pad + kernel, len); }
};

// The arg-max of one window: the first largest key in row-major order; a NaN wins over numbers
// (as in any max that propagates NaN). Padding is never chosen: every window holds a real pixel.
// For scalars and, lane by lane, for vectors (a mask), without a branch.
template <class T>
inline auto takes(T k, T top) { return (k > top) | ((k != k) & (top == top)); }

template <class T>
int64_t window_argmax(const PoolGeometry& g, const WindowBounds& rows, const WindowBounds& cols, const T* keys,
                      int64_t i, int64_t j) {
  const int64_t r0 = rows.lo(i), r1 = rows.hi(i), c0 = cols.lo(j), c1 = cols.hi(j);
  int64_t best = r0 * g.w + c0;
  T top = keys[best];
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t q = (r == r0 ? c0 + 1 : c0); q < c1; ++q) {
      const bool t = takes(keys[r * g.w + q], top);
      top = t ? keys[r * g.w + q] : top;
      best = t ? r * g.w + q : best;
    }
  return best;
}

// ---- 2x2 windows at stride 2 (every pool of the conv models), vectorised ----
// Such windows do not overlap. Window (i, j) reads image rows a = 2 i - pad and a + 1, columns
// 2 j - pad and 2 j - pad + 1. A vector of windows j0 .. j0 + lanes - 1 loads the two rows' 2 lanes
// pixels from column 2 j0 - pad and splits them by column parity; a mask per lane says which of
// the four pixels lie inside the image. Every window then takes its arg-max as window_argmax does
// (the first pixel inside, then each later one that `takes` it, in row-major order) with vector
// compares and selects: nothing branches on the data, whose comparisons no predictor guesses. The
// arg-max is coded 0..3 in that order. Loads may read pixels of the neighbouring rows or planes
// (masked out); near the tensor's ends they go one at a time.
template <class T>
struct MaskOf;
template <>
struct MaskOf<float> {
  typedef int32_t type __attribute__((vector_size(64)));
};
template <>
struct MaskOf<double> {
  typedef int64_t type __attribute__((vector_size(64)));
};
template <class T>
using Mask = typename MaskOf<T>::type;
template <class T>
using MaskInt = std::remove_reference_t<decltype(Mask<T>{}[0])>;

// Even and odd lanes of the 2 lanes values a, b; and back.
template <class V, size_t... I>
V evens(V a, V b, std::index_sequence<I...>) { return __builtin_shufflevector(a, b, (2 * I)...); }
template <class V, size_t... I>
V odds(V a, V b, std::index_sequence<I...>) { return __builtin_shufflevector(a, b, (2 * I + 1)...); }
template <class V, size_t... I>
V interleave_low(V e, V o, std::index_sequence<I...>) {
  return __builtin_shufflevector(e, o, (I / 2 + (I % 2) * sizeof...(I))...);
}
template <class V, size_t... I>
V interleave_high(V e, V o, std::index_sequence<I...>) {
  return __builtin_shufflevector(e, o, ((I + sizeof...(I)) / 2 + (I % 2) * sizeof...(I))...);
}

constexpr int64_t pair_row_max = 128;  // windows a row on this path (its row buffers live on the stack)

bool pairs_vectorised(const PoolGeometry& g) { return g.kernel == 2 && g.stride == 2 && g.ow <= pair_row_max; }

template <class T>
struct PairWindows {
  static constexpr int64_t lanes = vec_lanes<T>;
  using Lanes = std::make_index_sequence<size_t(lanes)>;
  const PoolGeometry& g;
  int64_t total, len;                               // the tensor's elements; ow in whole vectors
  alignas(64) MaskInt<T> inside[2][pair_row_max];  // window j's even, odd column inside the image

  // Built once per call (the masks are the same for every plane); len 0 off this path.
  explicit PairWindows(const PoolGeometry& geometry)
      : g(geometry), total(g.planes * g.h * g.w), len(pairs_vectorised(g) ? (g.ow + lanes - 1) / lanes * lanes : 0) {
    for (int64_t j = 0; j < len; ++j)
      for (int64_t q = 0; q < 2; ++q) {
        const int64_t col = 2 * j - g.pad + q;
        inside[q][j] = j < g.ow && col >= 0 && col < g.w ? MaskInt<T>(-1) : MaskInt<T>(0);
      }
  }
  // Row `row` of plane p, the windows from j0: its pixels in even and odd columns (zeros outside).
  void read(const T* x, int64_t p, int64_t row, int64_t j0, Vec<T>& even, Vec<T>& odd) const {
    even = odd = Vec<T>{};
    if (row < 0 || row >= g.h) return;
    const int64_t at = (p * g.h + row) * g.w + 2 * j0 - g.pad;
    if (at >= 0 && at + 2 * lanes <= total) {
      const Vec<T> a = load(x + at), b = load(x + at + lanes);
      even = evens(a, b, Lanes{});
      odd = odds(a, b, Lanes{});
      return;
    }
    for (int64_t l = 0; l < lanes; ++l) {
      if (at + 2 * l >= 0 && at + 2 * l < total) even[l] = x[at + 2 * l];
      if (at + 2 * l + 1 >= 0 && at + 2 * l + 1 < total) odd[l] = x[at + 2 * l + 1];
    }
  }
  void read_windows(const T* x, int64_t p, int64_t i, int64_t j0, Vec<T> (&v)[4]) const {
    read(x, p, 2 * i - g.pad, j0, v[0], v[1]);
    read(x, p, 2 * i - g.pad + 1, j0, v[2], v[3]);
  }
  Mask<T> argmax(int64_t i, int64_t j0, const Vec<T> (&k)[4]) const {
    const MaskInt<T> ra = 2 * i - g.pad >= 0 ? -1 : 0, rb = 2 * i - g.pad + 1 < g.h ? -1 : 0;
    Mask<T> ce, co;
    std::memcpy(&ce, inside[0] + j0, sizeof ce);
    std::memcpy(&co, inside[1] + j0, sizeof co);
    const Mask<T> in[4] = {ce & ra, co & ra, ce & rb, co & rb};
    Vec<T> top = k[0];
    Mask<T> at = Mask<T>{}, have = in[0];
    for (int q = 1; q < 4; ++q) {
      const Mask<T> t = in[q] & (~have | takes(k[q], top));
      top = t ? k[q] : top;
      at = t ? Mask<T>{} + q : at;
      have |= in[q];
    }
    return at;
  }
};

template <class T>
void max_pool(const KernelCall& c) {
  const PoolGeometry g = pool_geometry(c.in[0].shape, c.out.shape, c.node->attrs);
  const WindowBounds rows{g.h, g.kernel, g.stride, g.pad}, cols{g.w, g.kernel, g.stride, g.pad};
  const T *keys = c.in[0].ptr<T>(), *values = c.in[1].ptr<T>();
  T* out = c.out.ptr<T>();
  const int64_t plane = g.h * g.w;
  const bool pairs = pairs_vectorised(g), same = keys == values;
  const PairWindows<T> w(g);
#pragma omp parallel for schedule(static) if (c.in[0].numel() > cpu::parallel_grain)
  for (int64_t p = 0; p < g.planes; ++p) {
    if (!pairs) {
      for (int64_t i = 0; i < g.oh; ++i)
        for (int64_t j = 0; j < g.ow; ++j)
          out[(p * g.oh + i) * g.ow + j] = values[p * plane + window_argmax(g, rows, cols, keys + p * plane, i, j)];
      continue;
    }
    alignas(64) T o[pair_row_max];
    for (int64_t i = 0; i < g.oh; ++i) {
      for (int64_t j0 = 0; j0 < w.len; j0 += w.lanes) {
        Vec<T> k[4], v[4];
        w.read_windows(keys, p, i, j0, k);
        const Mask<T> at = w.argmax(i, j0, k);
        if (!same) w.read_windows(values, p, i, j0, v);
        const Vec<T>(&vv)[4] = same ? k : v;
        Vec<T> r = vv[0];
        for (int q = 1; q < 4; ++q) r = at == q ? vv[q] : r;
        store(o + j0, r);
      }
      std::copy(o, o + g.ow, out + (p * g.oh + i) * g.ow);
    }
  }
}

template <class T>
void max_unpool(const KernelCall& c) {
  const PoolGeometry g = pool_geometry(c.in[0].shape, c.in[1].shape, c.node->attrs);
  const WindowBounds rows{g.h, g.kernel, g.stride, g.pad}, cols{g.w, g.kernel, g.stride, g.pad};
  const T *keys = c.in[0].ptr<T>(), *grad = c.in[1].ptr<T>();
  T* out = c.out.ptr<T>();
  const int64_t plane = g.h * g.w;
  const bool pairs = pairs_vectorised(g);
  const PairWindows<T> w(g);
  using Lanes = typename PairWindows<T>::Lanes;
  const int64_t cols_out = std::min(g.w, 2 * g.ow - g.pad);  // the columns some window covers
#pragma omp parallel for schedule(static) if (c.out.numel() > cpu::parallel_grain)
  for (int64_t p = 0; p < g.planes; ++p) {
    T* op = out + p * plane;
    if (!pairs) {
      std::fill(op, op + plane, T(0));
      for (int64_t i = 0; i < g.oh; ++i)
        for (int64_t j = 0; j < g.ow; ++j)
          op[window_argmax(g, rows, cols, keys + p * plane, i, j)] += grad[(p * g.oh + i) * g.ow + j];
      continue;
    }
    alignas(64) T gi[pair_row_max] = {}, pix[2][2 * pair_row_max];  // g's row i; rows a, b from column -pad
    for (int64_t i = 0; i < g.oh; ++i) {
      std::copy(grad + (p * g.oh + i) * g.ow, grad + (p * g.oh + i + 1) * g.ow, gi);
      for (int64_t j0 = 0; j0 < w.len; j0 += w.lanes) {
        Vec<T> k[4];
        w.read_windows(keys, p, i, j0, k);
        const Mask<T> at = w.argmax(i, j0, k);
        const Vec<T> gv = load(gi + j0);
        for (int half = 0; half < 2; ++half) {
          const Vec<T> e = at == 2 * half ? gv : Vec<T>{}, o = at == 2 * half + 1 ? gv : Vec<T>{};
          store(pix[half] + 2 * j0, interleave_low(e, o, Lanes{}));
          store(pix[half] + 2 * j0 + w.lanes, interleave_high(e, o, Lanes{}));
        }
      }
      for (int half = 0; half < 2; ++half) {  // the windows' rows back into the image, each pixel written once
        const int64_t row = 2 * i - g.pad + half;
        if (row < 0 || row >= g.h) continue;
        std::copy(pix[half] + g.pad, pix[half] + g.pad + cols_out, op + row * g.w);
        std::fill(op + row * g.w + cols_out, op + (row + 1) * g.w, T(0));
      }
    }
    std::fill(op + std::min(g.h, 2 * g.oh - g.pad) * g.w, op + plane, T(0));  // rows below every window
  }
}

template <class T>
void upsample(const KernelCall& c) {
  const int64_t s = c.node->attrs.i[0], rows = c.in[0].shape[0] * c.in[0].shape[1] * c.in[0].shape[2];
  const int64_t w = c.in[0].shape[3];
  const T* x = c.in[0].ptr<T>();
  T* y = c.out.ptr<T>();
#pragma omp parallel for schedule(static) if (c.out.numel() > cpu::parallel_grain)
  for (int64_t r = 0; r < rows; ++r) {  // input row r becomes output rows r s .. r s + s - 1
    const T* in = x + r * w;
    T* out = y + r * s * w * s;
    if (s == 2)
      for (int64_t q = 0; q < w; ++q) out[2 * q] = out[2 * q + 1] = in[q];
    else
      for (int64_t q = 0; q < w; ++q)
        for (int64_t t = 0; t < s; ++t) out[q * s + t] = in[q];
    for (int64_t t = 1; t < s; ++t) std::copy(out, out + w * s, out + t * w * s);
  }
}

template <class T>
void sum_pool(const KernelCall& c) {
  const int64_t s = c.node->attrs.i[0], rows = c.out.shape[0] * c.out.shape[1] * c.out.shape[2];
  const int64_t ow = c.out.shape[3], w = ow * s;
  const T* x = c.in[0].ptr<T>();
  T* y = c.out.ptr<T>();
#pragma omp parallel for schedule(static) if (c.in[0].numel() > cpu::parallel_grain)
  for (int64_t r = 0; r < rows; ++r) {  // output row r sums input rows r s .. r s + s - 1, row-major per block
    const T* in = x + r * s * w;
    T* __restrict out = y + r * ow;
    if (s == 2) {  // the same sums in the same order, written so that the loop vectorises
      const T *a = in, *b = in + w;
#pragma omp simd
      for (int64_t j = 0; j < ow; ++j) {
        const T a0 = a[2 * j], a1 = a[2 * j + 1], b0 = b[2 * j], b1 = b[2 * j + 1];
        out[j] = T(0) + a0 + a1 + b0 + b1;
      }
      continue;
    }
    for (int64_t j = 0; j < ow; ++j) {
      T acc = 0;
      for (int64_t a = 0; a < s; ++a)
        for (int64_t b = 0; b < s; ++b) acc += in[a * w + j * s + b];
      out[j] = acc;
    }
  }
}

}  // namespace

}  // namespace ag::cpu

void ag::set_cpu_direct_convolutions(bool on) { ag::cpu::direct_allowed = on; }

namespace ag::cpu {

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
