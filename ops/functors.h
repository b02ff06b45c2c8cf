// Scalar math, written once for every backend: each functor compiles for the host and, under
// nvcc, for the device. Forward maps, the dedicated backward maps, loss terms and random draws.
// Functors with parameters read them from the node's Attrs.
#pragma once
#include <cmath>
#include <cstdint>

#include "ops/op.h"

#if defined(__CUDACC__)
#define AG_HD __host__ __device__ __forceinline__
#else
#define AG_HD inline
#endif

namespace ag::fn {

AG_HD float exp_(float x) { return expf(x); }
AG_HD double exp_(double x) { return ::exp(x); }
AG_HD float log_(float x) { return logf(x); }
AG_HD double log_(double x) { return ::log(x); }
AG_HD float log1p_(float x) { return log1pf(x); }
AG_HD double log1p_(double x) { return ::log1p(x); }
AG_HD float sqrt_(float x) { return sqrtf(x); }
AG_HD double sqrt_(double x) { return ::sqrt(x); }
AG_HD float tanh_(float x) { return tanhf(x); }
AG_HD double tanh_(double x) { return ::tanh(x); }
AG_HD float abs_(float x) { return fabsf(x); }
AG_HD double abs_(double x) { return ::fabs(x); }
template <class T> AG_HD T max_(T a, T b) { return a > b ? a : b; }
template <class T> AG_HD T min_(T a, T b) { return a < b ? a : b; }

// Keeping exp's argument where glibc's vector exp is fast. That library computes a lane whose
// result overflows or underflows through the scalar function, ~20x slower; saturated logits (a
// deep autoencoder's background pixels sit at -100) made BCE 10% of a training step. Past
// +-exp_cut, e^x is above 6e37 or below the smallest normal number (float: e^-87 = 1.6e-38;
// double: e^-708 = 3.3e-308), and the functors below say what they give there.
template <class T> AG_HD constexpr T exp_cut() { return sizeof(T) == 4 ? T(87) : T(708); }
// x raised to at least -c by subtraction, which leaves every x >= -c exactly as it is (not as
// max(x, -c): GCC turns exp of that into a select between exp(x) and the constant exp(-c),
// computing exp(x) on every lane again). clamp_sub_ also lowers x to at most c.
template <class T> AG_HD T raise_sub_(T x, T c) { return x - min_(x + c, T(0)); }
template <class T> AG_HD T clamp_sub_(T x, T c) { return raise_sub_(x - max_(x - c, T(0)), c); }
// e^x for x <= 0: exactly exp_(x) down to -exp_cut, 0 below it (a flush of what would be subnormal).
template <class T> AG_HD T exp_nonpos_(T x) {
  const T e = exp_(raise_sub_(x, exp_cut<T>()));
  return x < -exp_cut<T>() ? T(0) : e;
}

// ---- unary maps -------------------------------------------------------------------------
struct Neg { template <class T> AG_HD T operator()(T x) const { return -x; } };
struct Exp { template <class T> AG_HD T operator()(T x) const { return exp_(x); } };
struct Log { template <class T> AG_HD T operator()(T x) const { return log_(x); } };
struct Sqrt { template <class T> AG_HD T operator()(T x) const { return sqrt_(x); } };
struct Square { template <class T> AG_HD T operator()(T x) const { return x * x; } };
struct Abs { template <class T> AG_HD T operator()(T x) const { return abs_(x); } };
struct Sign { template <class T> AG_HD T operator()(T x) const { return T(x > T(0)) - T(x < T(0)); } };
struct Relu { template <class T> AG_HD T operator()(T x) const { return x > T(0) ? x : T(0); } };
// 1/(1+e^-x), with e^-x kept in range: past +exp_cut the result is exactly 1 anyway; below
// -exp_cut it is under the smallest normal number and flushed to 0. NaN stays NaN.
struct Sigmoid {
  template <class T> AG_HD T operator()(T x) const {
    const T r = T(1) / (T(1) + exp_(clamp_sub_(-x, exp_cut<T>())));
    return x < -exp_cut<T>() ? T(0) : x > exp_cut<T>() ? T(1) : r;
  }
};
struct Tanh { template <class T> AG_HD T operator()(T x) const { return tanh_(x); } };
// log(1+e^x) = max(x,0) + log1p(e^-|x|), exact for large |x|.
struct Softplus {
  template <class T> AG_HD T operator()(T x) const { return max_(x, T(0)) + log1p_(exp_nonpos_(-abs_(x))); }
};
struct Clamp {  // attrs: f[0] = lo, f[1] = hi
  float lo, hi;
  explicit AG_HD Clamp(const Attrs& a) : lo(a.f[0]), hi(a.f[1]) {}
  template <class T> AG_HD T operator()(T x) const { return min_(max_(x, T(lo)), T(hi)); }
};
struct Affine {  // attrs: f[0] = a, f[1] = b; y = a x + b
  float a, b;
  explicit AG_HD Affine(const Attrs& at) : a(at.f[0]), b(at.f[1]) {}
  template <class T> AG_HD T operator()(T x) const { return T(a) * x + T(b); }
};

// ---- binary zips --------------------------------------------------------------------------
struct Add { template <class T> AG_HD T operator()(T a, T b) const { return a + b; } };
struct Sub { template <class T> AG_HD T operator()(T a, T b) const { return a - b; } };
struct Mul { template <class T> AG_HD T operator()(T a, T b) const { return a * b; } };
struct Div { template <class T> AG_HD T operator()(T a, T b) const { return a / b; } };
// relu_grad(x, g) = g * [x > 0]
struct ReluGrad { template <class T> AG_HD T operator()(T x, T g) const { return x > T(0) ? g : T(0); } };
// sigmoid_grad(y, g) = g * y (1 - y), with y = sigmoid(x)
struct SigmoidGrad { template <class T> AG_HD T operator()(T y, T g) const { return g * y * (T(1) - y); } };
// tanh_grad(y, g) = g (1 - y^2), with y = tanh(x)
struct TanhGrad { template <class T> AG_HD T operator()(T y, T g) const { return g * (T(1) - y * y); } };
struct ClampGrad {  // clamp_grad(x, g) = g * [lo <= x <= hi]
  float lo, hi;
  explicit AG_HD ClampGrad(const Attrs& a) : lo(a.f[0]), hi(a.f[1]) {}
  template <class T> AG_HD T operator()(T x, T g) const { return (x >= T(lo) && x <= T(hi)) ? g : T(0); }
};

// ---- loss terms: the loss is scale * sum_i term(a_i, b_i) ---------------------------------
// -(t log p + (1-t) log(1-p)), each log floored at -100 as PyTorch does, so p = 0 or 1 is finite.
struct BceTerm {
  template <class T> AG_HD T operator()(T p, T t) const {
    return -(t * max_(log_(p), T(-100)) + (T(1) - t) * max_(log_(T(1) - p), T(-100)));
  }
};
// BCE on logits z: max(z,0) - z t + log(1 + e^-|z|).
struct BceLogitsTerm {
  template <class T> AG_HD T operator()(T z, T t) const {
    return max_(z, T(0)) - z * t + log1p_(exp_nonpos_(-abs_(z)));
  }
};
struct SquaredErrorTerm { template <class T> AG_HD T operator()(T a, T b) const { return (a - b) * (a - b); } };
// KL(N(mu, e^lv) || N(0, 1)) per coordinate: -1/2 (1 + lv - mu^2 - e^lv).
struct KlNormalTerm {
  template <class T> AG_HD T operator()(T mu, T lv) const { return T(-0.5) * (T(1) + lv - mu * mu - exp_(lv)); }
};

// ---- counter-based randomness: Philox4x32-10 (Salmon et al., SC'11) -----------------------
struct Philox4x32 {
  uint32_t c[4];
  AG_HD static uint32_t mulhi(uint32_t a, uint32_t b, uint32_t* lo) {
    uint64_t p = uint64_t(a) * uint64_t(b);
    *lo = uint32_t(p);
    return uint32_t(p >> 32);
  }
  // counter (c0..c3), key (k0, k1) -> four independent 32-bit words
  AG_HD Philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
    c[0] = c0; c[1] = c1; c[2] = c2; c[3] = c3;
    for (int r = 0; r < 10; ++r) {
      uint32_t lo0, lo1;
      uint32_t hi0 = mulhi(0xD2511F53u, c[0], &lo0);
      uint32_t hi1 = mulhi(0xCD9E8D57u, c[2], &lo1);
      uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
      c[0] = n0; c[1] = lo1; c[2] = n2; c[3] = lo0;
      k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
  }
};
AG_HD float unit_open_left(uint32_t x) { return float((x >> 8) + 1u) * (1.0f / 16777216.0f); }  // (0, 1]
AG_HD float unit_closed_left(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }   // [0, 1)

// A draw is a pure function of (seed, stream, step, index): the same on every backend and for
// any thread split. attrs: i[0] = seed, i[1] = stream (the node's key), f[0], f[1] = parameters.
// Two ways to draw: draw(i, step), one Philox block per value (parameter initialisation, the
// augmentation's parameters); and the random ops' fills, which take four values from each block
// (Philox makes four 32-bit words at once): element i is draw4(i / 4, step)[i % 4].
struct DrawBase {
  uint32_t k0, k1;
  float p0, p1;
  explicit AG_HD DrawBase(const Attrs& a)
      : k0(uint32_t(a.i[0])), k1(uint32_t(a.i[1]) ^ uint32_t(uint64_t(a.i[0]) >> 32)), p0(a.f[0]), p1(a.f[1]) {}
  AG_HD Philox4x32 bits(uint64_t index, uint32_t step) const {
    return Philox4x32(uint32_t(index), uint32_t(index >> 32), step, 0x0A3Eu, k0, k1);
  }
};
struct UniformDraw : DrawBase {  // U[lo, hi): f[0] = lo, f[1] = hi
  using DrawBase::DrawBase;
  template <class T> AG_HD T from(uint32_t word) const { return T(p0) + (T(p1) - T(p0)) * T(unit_closed_left(word)); }
  template <class T> AG_HD T draw(uint64_t i, uint32_t step) const { return from<T>(bits(i, step).c[0]); }
  template <class T> AG_HD void draw4(uint64_t group, uint32_t step, T* out) const {
    const Philox4x32 r = bits(group, step);
    for (int j = 0; j < 4; ++j) out[j] = from<T>(r.c[j]);
  }
};
struct NormalDraw : DrawBase {  // N(mean, std^2) by Box-Muller: f[0] = mean, f[1] = std
  using DrawBase::DrawBase;
  template <class T> AG_HD T draw(uint64_t i, uint32_t step) const {
    Philox4x32 r = bits(i, step);
    float u1 = unit_open_left(r.c[0]), u2 = unit_closed_left(r.c[1]);
    float z = sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
    return T(p0) + T(p1) * T(z);
  }
  // Each pair of words gives two values: the radius times the angle's cosine and its sine.
  template <class T> AG_HD void draw4(uint64_t group, uint32_t step, T* out) const {
    const Philox4x32 r = bits(group, step);
    for (int j = 0; j < 4; j += 2) {
      const float radius = sqrtf(-2.0f * logf(unit_open_left(r.c[j])));
      const float angle = 6.28318530717958647692f * unit_closed_left(r.c[j + 1]);
      out[j] = T(p0) + T(p1) * T(radius * cosf(angle));
      out[j + 1] = T(p0) + T(p1) * T(radius * sinf(angle));
    }
  }
};
struct BernoulliDraw : DrawBase {  // 1 with probability p = f[0], else 0
  using DrawBase::DrawBase;
  template <class T> AG_HD T from(uint32_t word) const { return unit_closed_left(word) < p0 ? T(1) : T(0); }
  template <class T> AG_HD T draw(uint64_t i, uint32_t step) const { return from<T>(bits(i, step).c[0]); }
  template <class T> AG_HD void draw4(uint64_t group, uint32_t step, T* out) const {
    const Philox4x32 r = bits(group, step);
    for (int j = 0; j < 4; ++j) out[j] = from<T>(r.c[j]);
  }
};

// Builds a functor from the node's attributes where it takes any.
template <class F>
AG_HD F make(const Attrs& a) {
  if constexpr (requires { F(a); }) return F(a);
  else return F{};
}

}  // namespace ag::fn
