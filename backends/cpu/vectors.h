// 64-byte vectors for the CPU kernels, through GCC's vector extension (16 floats or 8 doubles;
// the compiler picks the instructions, two 32-byte halves where the CPU has no 64-byte
// registers), and the matrix transpose built on them.
#pragma once
#include <cstdint>
#include <cstring>
#include <utility>

namespace ag::cpu {

typedef float Vec16f __attribute__((vector_size(64)));
typedef double Vec8d __attribute__((vector_size(64)));
template <class T>
struct VecOf;
template <>
struct VecOf<float> {
  using type = Vec16f;
};
template <>
struct VecOf<double> {
  using type = Vec8d;
};
template <class T>
using Vec = typename VecOf<T>::type;
template <class T>
constexpr int64_t vec_lanes = int64_t(64 / sizeof(T));
template <class T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
inline void store(T* p, const Vec<T>& v) { std::memcpy(p, &v, sizeof v); }
// Keeps a loaded vector in a register: without it GCC folds the load into each FMA that reads
// it, and an unaligned load read by OB products costs OB loads (which split cache lines).
template <class V>
inline void in_register(V& v) {
#ifdef __AVX512F__
  asm("" : "+v"(v));
#else
  (void)v;
#endif
}

// One butterfly stage of a register transpose: rows i and i + D exchange their lanes k with
// k & D set and k - D of the other (lo) / k + D (hi).
template <int D, class V, size_t... K>
inline V swap_lo(V a, V b, std::index_sequence<K...>) {
  return __builtin_shufflevector(a, b, ((K & D) == 0 ? int(K) : int(sizeof...(K) + K - D))...);
}
template <int D, class V, size_t... K>
inline V swap_hi(V a, V b, std::index_sequence<K...>) {
  return __builtin_shufflevector(a, b, ((K & D) == 0 ? int(K + D) : int(sizeof...(K) + K))...);
}

// dst [cols, rows] = src [rows, cols]^T (leading dimensions ld_src, ld_dst). Squares of one
// vector length are transposed in registers (log2 of it stages of shuffles), in bands of 4
// squares' columns down all the rows so that a band's reads and writes stay in cache; the
// edges go element by element.
template <class T>
void transpose(const T* __restrict src, int64_t rows, int64_t cols, int64_t ld_src, T* __restrict dst, int64_t ld_dst) {
  constexpr int L = int(vec_lanes<T>);
  const int64_t rows_v = rows / L * L, cols_v = cols / L * L;
  for (int64_t c0 = 0; c0 < cols_v; c0 += 4 * L)
    for (int64_t i0 = 0; i0 < rows_v; i0 += L)
      for (int64_t j0 = c0; j0 < cols_v && j0 < c0 + 4 * L; j0 += L) {
        Vec<T> r[L];
        for (int i = 0; i < L; ++i) r[i] = load(src + (i0 + i) * ld_src + j0);
        auto stage = [&]<int D>(auto self) {
          for (int i = 0; i < L; ++i)
            if ((i & D) == 0) {
              const Vec<T> lo = swap_lo<D>(r[i], r[i + D], std::make_index_sequence<L>{});
              r[i + D] = swap_hi<D>(r[i], r[i + D], std::make_index_sequence<L>{});
              r[i] = lo;
            }
          if constexpr (2 * D < L) self.template operator()<2 * D>(self);
        };
        stage.template operator()<1>(stage);
        for (int j = 0; j < L; ++j) store(dst + (j0 + j) * ld_dst + i0, r[j]);
      }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = i < rows_v ? cols_v : 0; j < cols; ++j) dst[j * ld_dst + i] = src[i * ld_src + j];
}

}  // namespace ag::cpu
