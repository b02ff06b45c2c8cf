// Products with a mostly-zero operand: the CPU backend runs them on its own kernels
// (backends/cpu/sparse_gemm.h), which must give OpenBLAS's dense product bit for bit, on one
// thread and on several, for one K block and for many, either operand sparse, every transpose,
// with a bias, with row and column counts that do not fill the kernels' groups and vectors; and
// a NaN in the sparse operand still reaches the result.
#include <cblas.h>
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
  std::vector<float> ours, openblas;
  int64_t sparse_runs = 0;
};

// The executor's product and OpenBLAS's (on as many threads) of the same inputs; `poison`
// puts a NaN into the sparse operand first.
Result both(const Case& c, int threads, bool poison = false) {
  const int64_t ar = c.ta ? c.k : c.m, ac = c.ta ? c.m : c.k, br = c.tb ? c.n : c.k, bc = c.tb ? c.k : c.n;
  // The sparse operand is stored as its product sees it (A: m x k, B: k x n), untransposed.
  std::vector<float> a = operand(ar, ac, c.sparse_a, 0.37), b = operand(br, bc, !c.sparse_a, 0.91),
                     bias = operand(1, c.n, false, 1.3);
  if (poison) (c.sparse_a ? a : b)[0] = std::numeric_limits<float>::quiet_NaN();
  set_num_threads(threads);
  Result r;
  const int64_t before = cpu_sparse_products();
  r.ours = ag::testing::run_product(c.m, c.k, c.n, c.ta, c.tb, a, b, c.bias ? bias : std::vector<float>{});
  r.sparse_runs = cpu_sparse_products() - before;
  r.openblas.assign(size_t(c.m * c.n), 0.0f);
  if (c.bias)
    for (int64_t i = 0; i < c.m; ++i) std::copy(bias.begin(), bias.end(), r.openblas.begin() + i * c.n);
  cblas_sgemm(CblasRowMajor, c.ta ? CblasTrans : CblasNoTrans, c.tb ? CblasTrans : CblasNoTrans, int(c.m), int(c.n),
              int(c.k), 1.0f, a.data(), int(ac), b.data(), int(bc), c.bias ? 1.0f : 0.0f, r.openblas.data(), int(c.n));
  set_num_threads(0);
  return r;
}

bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("products with a mostly-zero operand give OpenBLAS's dense bits", "[forward][sparse]") {
  const Case cases[] = {
      {150, 784, 128, false, true, true, true},     // the tutorial's encoder: three K blocks
      {150, 784, 1000, false, true, true, true},    // the deep model's first layer
      {150, 200, 300, false, false, false, true},   // one K block, B read as stored
      {66, 1700, 130, false, false, true, true},    // many blocks; a group of 2 rows; 2 columns past the vectors
      {128, 150, 784, true, false, false, false},   // the tutorial's encoder weight gradient
      {1000, 150, 784, true, false, false, false},  // the deep model's
      {128, 1024, 784, true, false, false, false},  // a batch of 1024: several K blocks
      {130, 150, 250, false, false, true, false},   // A not transposed: a transposed copy; a bias
  };
  for (const Case& c : cases)
    for (int threads : {1, 2, 3}) {
      INFO(c << ", " << threads << " threads");
      const Result r = both(c, threads);
      CHECK(r.sparse_runs == 1);
      CHECK(same_bits(r.ours, r.openblas));
    }
}

TEST_CASE("a NaN in a mostly-zero operand reaches the product as in OpenBLAS's", "[forward][sparse]") {
  for (const Case& c : {Case{150, 784, 128, false, true, true, true}, Case{128, 150, 784, true, false, false, false}}) {
    INFO(c);
    const Result r = both(c, 2, true);
    CHECK(r.sparse_runs == 1);
    CHECK(std::isnan(r.ours[0]));
    size_t differ = 0;
    for (size_t i = 0; i < r.ours.size(); ++i) differ += std::isnan(r.ours[i]) != std::isnan(r.openblas[i]);
    CHECK(differ == 0);
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

namespace {

// op(a) op(b) (+ bias) by OpenBLAS's single-threaded blocked driver: one call, added onto zeros
// or the bias (beta = 1: with beta = 0 a small row-major product may take its direct path).
std::vector<float> one_thread_openblas(const Case& c, const std::vector<float>& a, const std::vector<float>& b,
                                       const std::vector<float>& bias) {
  std::vector<float> want(size_t(c.m * c.n), 0.0f);
  if (c.bias)
    for (int64_t i = 0; i < c.m; ++i) std::copy(bias.begin(), bias.end(), want.begin() + i * c.n);
  openblas_set_num_threads(1);
  cblas_sgemm(CblasRowMajor, c.ta ? CblasTrans : CblasNoTrans, c.tb ? CblasTrans : CblasNoTrans, int(c.m), int(c.n),
              int(c.k), 1.0f, a.data(), int(c.ta ? c.m : c.k), b.data(), int(c.tb ? c.k : c.n), 1.0f, want.data(),
              int(c.n));
  set_num_threads(0);
  return want;
}

}  // namespace

TEST_CASE("products past one K block that OpenBLAS would not thread have its one-thread bits", "[forward][sparse]") {
  // The VAE's heads (150x400 times 400x20) and the like: K past one of OpenBLAS's blocks, and a
  // side of C under 64 (or too little work) for its threaded driver. The backend runs them with
  // the single-threaded driver on any number of threads (one call, or bands each past the
  // small-matrix kernels), so the bits are that driver's everywhere.
  const Case cases[] = {{150, 400, 20, false, true, true, false},  {150, 400, 20, false, false, false, false},
                        {150, 784, 20, false, true, true, false},  {150, 1000, 20, false, false, false, false},
                        {40, 1000, 40, true, false, false, false}, {150, 300, 60, true, true, true, false},
                        {20, 784, 150, true, false, true, false}};
  for (const Case& c : cases) {
    INFO(c);
    const std::vector<float> a = operand(c.m * c.k, 1, false, 0.37), b = operand(c.k * c.n, 1, false, 0.91),
                             bias = operand(1, c.n, false, 1.3);
    const std::vector<float> want = one_thread_openblas(c, a, b, bias);
    for (int threads : {1, 2, 3}) {
      INFO(threads << " threads");
      set_num_threads(threads);
      CHECK(same_bits(ag::testing::run_product(c.m, c.k, c.n, c.ta, c.tb, a, b, c.bias ? bias : std::vector<float>{}),
                      want));
      set_num_threads(0);
    }
  }
}

TEST_CASE("two such products side by side keep those bits", "[forward][plan]") {
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
  const Case c1{150, 400, 20, false, true, true, false}, c2{150, 400, 20, false, true, false, false};
  auto floats = [](const HostTensor& t) { return std::vector<float>(t.ptr<float>(), t.ptr<float>() + t.numel()); };
  CHECK(same_bits(floats(ex.read(y1)), one_thread_openblas(c1, hv, w1v, bv)));
  CHECK(same_bits(floats(ex.read(y2)), one_thread_openblas(c2, hv, w2v, {})));
  set_num_threads(0);
}

TEST_CASE("dense products past one K block in our column bands keep OpenBLAS's threaded bits", "[forward][sparse]") {
  // Products OpenBLAS would run on its threaded driver (both sides of C at least 64, 2e6
  // multiply-adds or more): the backend cuts C's columns into bands, one thread each, with that
  // driver's blocks of K. The same bits as OpenBLAS's own call on as many threads.
  const Case cases[] = {{150, 784, 128, false, true, true, false},  {150, 400, 784, false, true, true, false},
                        {150, 1000, 500, false, false, false, false}, {150, 1000, 784, true, false, false, false},
                        {64, 600, 64, false, false, false, false},   {130, 700, 250, true, true, true, false}};
  for (const Case& c : cases)
    for (int threads : {2, 3}) {
      INFO(c << ", " << threads << " threads");
      const std::vector<float> a = operand(c.m * c.k, 1, false, 0.37), b = operand(c.k * c.n, 1, false, 0.91),
                               bias = operand(1, c.n, false, 1.3);
      set_num_threads(threads);
      const std::vector<float> ours =
          ag::testing::run_product(c.m, c.k, c.n, c.ta, c.tb, a, b, c.bias ? bias : std::vector<float>{});
      std::vector<float> want(size_t(c.m * c.n), 0.0f);
      if (c.bias)
        for (int64_t i = 0; i < c.m; ++i) std::copy(bias.begin(), bias.end(), want.begin() + i * c.n);
      cblas_sgemm(CblasRowMajor, c.ta ? CblasTrans : CblasNoTrans, c.tb ? CblasTrans : CblasNoTrans, int(c.m),
                  int(c.n), int(c.k), 1.0f, a.data(), int(c.ta ? c.m : c.k), b.data(), int(c.tb ? c.k : c.n),
                  c.bias ? 1.0f : 0.0f, want.data(), int(c.n));
      set_num_threads(0);
      CHECK(same_bits(ours, want));
    }
}
