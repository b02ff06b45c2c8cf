// Products with a mostly-zero operand: the CPU backend runs them on its own kernels
// (backends/cpu/sparse_gemm.h), which must keep the numerical contract's bound
// (ag::testing::check_product) on one thread and on several, for short and long K, either
// operand sparse, every transpose, with a bias, with row and column counts that do not fill the
// kernels' groups and vectors, and give the same bits on every thread count; a NaN in the sparse
// operand still reaches the result; pairs of products keep the bound too.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <vector>

#include "graph/aegraph.h"
#include "step_fixture.h"

using namespace ag;

namespace {

struct Case {
  int64_t m, k, n;
  bool ta, tb, bias;
  bool sparse_a;  // else B is the sparse one
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.m << "x" << c.k << " * " << c.k << "x" << c.n << " ta " << c.ta << " tb " << c.tb << " bias " << c.bias
            << (c.sparse_a ? ", A sparse" : ", B sparse");
}

// Like a batch of images: every third row (a sample) has values, in two of every seven columns
// (pixels), 60% of those nonzero. The dense operand: sines.
std::vector<float> operand(int64_t rows, int64_t cols, bool sparse, double f) {
  std::vector<float> v(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const bool on = r % 3 == 0 && c % 7 < 2 && (i * 2654435761u) % 100 < 60;
      v[size_t(i)] = !sparse || on ? float(std::sin(f * double(i + 1))) : 0.0f;
    }
  return v;
}

struct Result {
  std::vector<float> a, b, bias, ours;
  int64_t sparse_runs = 0;
};

// The executor's product of the case's operands on `threads` threads; `poison` puts a NaN into
// the sparse operand first.
Result run(const Case& c, int threads, bool poison = false) {
  const int64_t ar = c.ta ? c.k : c.m, ac = c.ta ? c.m : c.k, br = c.tb ? c.n : c.k, bc = c.tb ? c.k : c.n;
  // The sparse operand is stored as its product sees it (A: m x k, B: k x n), untransposed.
  Result r;
  r.a = operand(ar, ac, c.sparse_a, 0.37);
  r.b = operand(br, bc, !c.sparse_a, 0.91);
  if (c.bias) r.bias = operand(1, c.n, false, 1.3);
  if (poison) (c.sparse_a ? r.a : r.b)[0] = std::numeric_limits<float>::quiet_NaN();
  set_num_threads(threads);
  const int64_t before = cpu_sparse_products();
  r.ours = ag::testing::run_product(c.m, c.k, c.n, c.ta, c.tb, r.a, r.b, r.bias);
  r.sparse_runs = cpu_sparse_products() - before;
  set_num_threads(0);
  return r;
}

ag::testing::ProductCheck check(const Case& c, const Result& r) {
  return ag::testing::check_product(c.m, c.k, c.n, c.ta, c.tb, r.a, r.b, r.bias, r.ours);
}

}  // namespace

TEST_CASE("products with a mostly-zero operand keep float's bound, the same bits on any thread count", "[forward][sparse][numbers]") {
  const Case cases[] = {
      {150, 784, 128, false, true, true, true},     // the tutorial's encoder
      {150, 784, 1000, false, true, true, true},    // the deep model's first layer
      {150, 200, 300, false, false, false, true},   // B read as stored
      {66, 1700, 130, false, false, true, true},    // long K; a group of 2 rows; 2 columns past the vectors
      {128, 150, 784, true, false, false, false},   // the tutorial's encoder weight gradient
      {1000, 150, 784, true, false, false, false},  // the deep model's
      {128, 1024, 784, true, false, false, false},  // a batch of 1024
      {130, 150, 250, false, false, true, false},   // A not transposed: a transposed copy; a bias
  };
  for (const Case& c : cases) {
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      INFO(c << ", " << threads << " threads");
      const Result r = run(c, threads);
      CHECK(r.sparse_runs == 1);
      const ag::testing::ProductCheck k = check(c, r);
      CHECK(k.worst <= 1.0);
      CHECK(k.nan_mismatches == 0);
      if (first.empty()) first = r.ours;
      else CHECK(std::memcmp(first.data(), r.ours.data(), first.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("a NaN in a mostly-zero operand reaches the product as in the exact one", "[forward][sparse]") {
  for (const Case& c : {Case{150, 784, 128, false, true, true, true}, Case{128, 150, 784, true, false, false, false}}) {
    INFO(c);
    const Result r = run(c, 2, true);
    CHECK(r.sparse_runs == 1);
    CHECK(std::isnan(r.ours[0]));
    const ag::testing::ProductCheck k = check(c, r);
    CHECK(k.nan_mismatches == 0);
    CHECK(k.worst <= 1.0);
  }
}

TEST_CASE("dense operands stay with OpenBLAS", "[forward][sparse]") {
  // Half the rows of A zero, but every group of four rows has values everywhere: nothing to skip.
  Graph g;
  Value a = input(g, {150, 784}, "a"), w = input(g, {128, 784}, "w");
  Value y = matmul(a, w, false, true);
  Executor ex(compile({y}));
  float* pa = ex.input(a).ptr<float>();
  for (int64_t i = 0; i < 150 * 784; ++i) pa[i] = (i / 784) % 2 ? 0.0f : 1.0f;
  std::fill(ex.input(w).ptr<float>(), ex.input(w).ptr<float>() + 128 * 784, 0.5f);
  const int64_t before = cpu_sparse_products();
  ex.run();
  CHECK(cpu_sparse_products() == before);
  CHECK(ex.read(y).at(0) == Approx(392.0));
}

TEST_CASE("products run side by side keep float's bound, and their bits run after run", "[forward][plan][numbers]") {
  // The VAE's mu and log-variance heads read the same hidden layer: a pair, one product per core.
  Graph g;
  Value h = input(g, {150, 400}, "h"), w1 = input(g, {20, 400}, "w1"), w2 = input(g, {20, 400}, "w2"),
        bias = input(g, {20}, "bias");
  Value y1 = matmul(h, w1, false, true, bias), y2 = matmul(h, w2, false, true);
  set_num_threads(2);
  Executor ex(compile({y1, y2}));
  const std::vector<float> hv = operand(150, 400, false, 0.37), w1v = operand(20, 400, false, 0.91),
                           w2v = operand(20, 400, false, 0.53), bv = operand(1, 20, false, 1.3);
  std::memcpy(ex.input(h).ptr<float>(), hv.data(), hv.size() * sizeof(float));
  std::memcpy(ex.input(w1).ptr<float>(), w1v.data(), w1v.size() * sizeof(float));
  std::memcpy(ex.input(w2).ptr<float>(), w2v.data(), w2v.size() * sizeof(float));
  std::memcpy(ex.input(bias).ptr<float>(), bv.data(), bv.size() * sizeof(float));
  const int64_t before = cpu_paired_products();
  ex.run();
  CHECK(cpu_paired_products() - before == 2);
  auto floats = [](const HostTensor& t) { return std::vector<float>(t.ptr<float>(), t.ptr<float>() + t.numel()); };
  const std::vector<float> first1 = floats(ex.read(y1)), first2 = floats(ex.read(y2));
  CHECK(ag::testing::check_product(150, 400, 20, false, true, hv, w1v, bv, first1).worst <= 1.0);
  CHECK(ag::testing::check_product(150, 400, 20, false, true, hv, w2v, {}, first2).worst <= 1.0);
  ex.run();
  CHECK(floats(ex.read(y1)) == first1);
  CHECK(floats(ex.read(y2)) == first2);
  set_num_threads(0);
}

namespace {

// The masked product of dense operands (sines) under a mask that keeps the entries where
// keep(i, j), on `threads` threads; and whether it ran on the kept entries alone.
struct Masked {
  std::vector<float> a, b, mask, ours;
  bool alone = false;
};
template <class Keep>
Masked run_masked(const Case& c, Keep keep, int threads) {
  Masked r;
  r.a = operand(c.ta ? c.k : c.m, c.ta ? c.m : c.k, false, 0.37);
  r.b = operand(c.tb ? c.n : c.k, c.tb ? c.k : c.n, false, 0.91);
  r.mask.resize(size_t(c.m * c.n));
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) r.mask[size_t(i * c.n + j)] = keep(i, j) ? 1.0f : (i + j) % 2 ? 0.0f : -1.0f;
  Graph g;
  Value va = input(g, c.ta ? Shape{c.k, c.m} : Shape{c.m, c.k}, "a"), vb = input(g, c.tb ? Shape{c.n, c.k} : Shape{c.k, c.n}, "b"),
        vm = input(g, {c.m, c.n}, "mask");
  Value y = masked_matmul(va, vb, vm, c.ta, c.tb);
  set_num_threads(threads);
  Executor ex(compile({y}));
  std::memcpy(ex.input(va).ptr<float>(), r.a.data(), r.a.size() * sizeof(float));
  std::memcpy(ex.input(vb).ptr<float>(), r.b.data(), r.b.size() * sizeof(float));
  std::memcpy(ex.input(vm).ptr<float>(), r.mask.data(), r.mask.size() * sizeof(float));
  const int64_t before = cpu_masked_products();
  ex.run();
  r.alone = cpu_masked_products() - before == 1;
  HostTensor out = ex.read(y);
  r.ours.assign(out.ptr<float>(), out.ptr<float>() + out.numel());
  set_num_threads(0);
  return r;
}

}  // namespace

TEST_CASE("a product masked to a few entries computes those alone, within float's bound, the same bits on any thread count",
          "[forward][sparse][numbers]") {
  // About 8 of 150 rows kept per column, as the winner-take-all autoencoder's top-k keeps.
  auto few = [](int64_t i, int64_t j) { return (i * 7 + j * 3) % 19 == 0; };
  const Case cases[] = {
      {150, 784, 1000, false, false, false, false},  // the wta's code gradient: B's columns copied
      {150, 784, 1000, false, true, false, false},   // B^T: its columns as stored
      {37, 33, 45, true, false, false, false},       // A^T copied; K past the vectors; odd sizes
      {40, 150, 29, true, true, false, false},
  };
  for (const Case& c : cases) {
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      INFO(c << ", " << threads << " threads");
      const Masked r = run_masked(c, few, threads);
      CHECK(r.alone);
      // Dropped entries are zero; kept ones within the bound (the dropped ones filled from the
      // dense product for the check).
      const std::vector<float> dense = ag::testing::run_product(c.m, c.k, c.n, c.ta, c.tb, r.a, r.b);
      std::vector<float> filled = r.ours;
      int64_t wrong_zeros = 0;
      for (size_t e = 0; e < filled.size(); ++e)
        if (!(r.mask[e] > 0.0f)) {
          wrong_zeros += filled[e] != 0.0f;
          filled[e] = dense[e];
        }
      CHECK(wrong_zeros == 0);
      CHECK(ag::testing::check_product(c.m, c.k, c.n, c.ta, c.tb, r.a, r.b, {}, filled).worst <= 1.0);
      if (first.empty()) first = r.ours;
      else CHECK(std::memcmp(first.data(), r.ours.data(), first.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("a product masked to many entries is the dense product, masked", "[forward][sparse]") {
  const Case c{150, 784, 200, false, false, false, false};
  const Masked r = run_masked(c, [](int64_t i, int64_t j) { return (i + 2 * j) % 3 == 0; }, 2);
  CHECK_FALSE(r.alone);
  const std::vector<float> dense = ag::testing::run_product(c.m, c.k, c.n, c.ta, c.tb, r.a, r.b);
  int64_t differ = 0;
  for (size_t e = 0; e < dense.size(); ++e) differ += r.ours[e] != (r.mask[e] > 0.0f ? dense[e] : 0.0f);
  CHECK(differ == 0);
}

TEST_CASE("the gradient through a batch top-k of a product is one masked product", "[forward][sparse][topk]") {
  Graph g;
  Value x = input(g, {150, 784}, "x"), w = input(g, {784, 1000}, "w"), keys = input(g, {150, 1000}, "keys");
  Value y = batch_topk_at(keys, matmul(x, w), 8);
  int masked = 0;
  for (int id = 0; id < g.size(); ++id) masked += g.node(id).op == OpCode::masked_matmul;
  CHECK(masked == 1);
  // And the plan drops the whole product the rewrite left unused.
  const Plan p = compile({y});
  for (int id : p.steps) CHECK(p.graph->node(id).op != OpCode::matmul);
}
