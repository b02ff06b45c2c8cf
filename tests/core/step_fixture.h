// A small autoencoder training step written as graph code (784 -> 32 -> 784, sigmoid, BCE,
// plain SGD as assign nodes), used by the plan and learning tests; and one matrix product run
// by an executor with the numerical contract's bound for it, for the tests of the CPU's products.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "graph/aegraph.h"

namespace ag::testing {

struct TinyAutoencoder {
  ParamStore store{Device::cpu, DType::f32, 1};
  Graph g;
  Value x, loss;
  std::vector<Value> updates;

  explicit TinyAutoencoder(int64_t batch, float lr = 0.5f, int64_t dim = 784, int64_t code = 32) {
    const float r1 = 1.0f / std::sqrt(float(dim)), r2 = 1.0f / std::sqrt(float(code));
    int w1 = store.add("enc.weight", {code, dim}, Init::Uniform(-r1, r1));
    int b1 = store.add("enc.bias", {code}, Init::Uniform(-r1, r1));
    int w2 = store.add("dec.weight", {dim, code}, Init::Uniform(-r2, r2));
    int b2 = store.add("dec.bias", {dim}, Init::Uniform(-r2, r2));
    std::vector<Value> params = {store.value(g, w1), store.value(g, b1), store.value(g, w2), store.value(g, b2)};
    x = input(g, {batch, dim}, "x");
    Value h = sigmoid(linear(x, params[0], params[1]));
    Value xhat = sigmoid(linear(h, params[2], params[3]));
    loss = bce(xhat, x);
    std::vector<Value> grads = grad(loss, params);
    for (size_t i = 0; i < params.size(); ++i) updates.push_back(assign(params[i], params[i] - grads[i] * lr));
  }
  std::vector<Value> outputs() const {
    std::vector<Value> o = {loss};
    o.insert(o.end(), updates.begin(), updates.end());
    return o;
  }
};

// Ten binary prototype "digits", each sample one of them with a few pixels flipped.
inline void make_batch(float* x, int64_t batch, int64_t dim, int64_t offset) {
  for (int64_t r = 0; r < batch; ++r) {
    int64_t proto = (r + offset) % 10;
    for (int64_t i = 0; i < dim; ++i) {
      bool on = ((i * 7 + proto * 131) % 97) < 30;
      bool flip = ((i * 13 + (r + offset) * 17) % 101) == 0;
      x[r * dim + i] = float(on != flip);
    }
  }
}

// op(a) op(b) (+ bias), m x k times k x n, a and b as stored (k x m when transposed, and so on),
// compiled and run by an executor on the current thread setting; bias empty: none.
inline std::vector<float> run_product(int64_t m, int64_t k, int64_t n, bool ta, bool tb, const std::vector<float>& a,
                                      const std::vector<float>& b, const std::vector<float>& bias = {}) {
  Graph g;
  Value va = input(g, ta ? Shape{k, m} : Shape{m, k}, "a"), vb = input(g, tb ? Shape{n, k} : Shape{k, n}, "b");
  Value vbias = input(g, {n}, "bias");
  Value y = bias.empty() ? matmul(va, vb, ta, tb) : matmul(va, vb, ta, tb, vbias);
  Executor ex(compile({y}));
  std::memcpy(ex.input(va).ptr<float>(), a.data(), a.size() * sizeof(float));
  std::memcpy(ex.input(vb).ptr<float>(), b.data(), b.size() * sizeof(float));
  if (!bias.empty()) std::memcpy(ex.input(vbias).ptr<float>(), bias.data(), bias.size() * sizeof(float));
  ex.run();
  HostTensor out = ex.read(y);
  return std::vector<float>(out.ptr<float>(), out.ptr<float>() + out.numel());
}

// The numerical contract for a float product (docs/architecture.md, "Numbers"): every element
// of op(A) op(B) + bias lies within gamma_{K+1} (|op(A)| |op(B)| + |bias|) of the exact value,
// gamma_n = n u / (1 - n u), u = 2^-24: the bound of any order of summation in float, with or
// without fused multiply-adds, so it holds for OpenBLAS's kernels on any core type, any cut of K
// and our sparse kernels alike. The exact value is taken in double (its own error is 2^-29 of
// the bound). worst: the largest error / bound over the elements (at most 1 passes);
// nan_mismatches: elements that are NaN in one and not in the other.
struct ProductCheck {
  double worst = 0;
  int64_t nan_mismatches = 0;
};

inline ProductCheck check_product(int64_t m, int64_t k, int64_t n, bool ta, bool tb, const std::vector<float>& a,
                                  const std::vector<float>& b, const std::vector<float>& bias,
                                  const std::vector<float>& c) {
  const double u = std::ldexp(1.0, -24), gamma = double(k + 1) * u / (1 - double(k + 1) * u);
  ProductCheck r;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double exact = bias.empty() ? 0.0 : double(bias[size_t(j)]);
      double magnitude = std::abs(exact);
      for (int64_t t = 0; t < k; ++t) {
        const double x = a[size_t(ta ? t * m + i : i * k + t)], y = b[size_t(tb ? j * k + t : t * n + j)];
        exact += x * y;
        magnitude += std::abs(x * y);
      }
      const double got = c[size_t(i * n + j)];
      if (std::isnan(got) || std::isnan(exact)) {
        r.nan_mismatches += std::isnan(got) != std::isnan(exact);
        continue;
      }
      r.worst = std::max(r.worst, std::abs(got - exact) / (gamma * magnitude + 1e-37));
    }
  return r;
}

}  // namespace ag::testing
