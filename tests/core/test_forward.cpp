// Forward values against hand computation: elementwise maps and broadcasting, matmul against a
// naive loop, reductions, shape ops, losses, the Philox stream (published known answers) and the
// statistics of the random fills; reductions that do not depend on the thread count; shape
// errors that name the op and both shapes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "graph/aegraph.h"
#include "ops/functors.h"
#include "step_fixture.h"

using namespace ag;
using Catch::Matchers::Contains;

namespace {

// Runs a graph with one f64 input filled by f(i) and returns the output.
template <class Build, class Fill>
HostTensor run_one(Shape shape, Fill fill, Build build) {
  Graph g;
  Value x = input(g, shape, "x", DType::f64);
  Value y = build(x);
  Executor ex(compile({y}));
  double* px = ex.input(x).ptr<double>();
  for (int64_t i = 0; i < shape.numel(); ++i) px[i] = fill(i);
  ex.run();
  return ex.read(y);
}

double ramp(int64_t i) { return 0.25 * double(i) - 1.0; }

}  // namespace

TEST_CASE("elementwise maps compute their formulas", "[forward]") {
  auto y = run_one({2, 3}, ramp, [](Value x) { return sigmoid(x) + tanh(x) * 2.0f - softplus(x) + relu(x); });
  for (int i = 0; i < 6; ++i) {
    double v = ramp(i);
    double want = 1 / (1 + std::exp(-v)) + 2 * std::tanh(v) - std::log1p(std::exp(v)) + std::max(v, 0.0);
    CHECK(y.at(i) == Approx(want).epsilon(1e-12));
  }
  auto c = run_one({5}, ramp, [](Value x) { return clamp(x, -0.5f, 0.1f); });
  CHECK(c.at(0) == -0.5);
  CHECK(c.at(3) == -0.25);
  CHECK(c.at(4) == 0);
  auto c2 = run_one({1}, [](int64_t) { return 0.7; }, [](Value x) { return clamp(x, -0.5f, 0.1f); });
  CHECK(c2.at(0) == Approx(0.1).epsilon(1e-7));
}

TEST_CASE("sigmoid, softplus and BCE on logits far out: exact inside exp's range, flushed past it", "[forward]") {
  // f32 through the vectorised loops, where glibc's exp would take its slow path past +-87.
  const std::vector<float> xs = {-1e30f, -120.f, -88.f, -87.5f, -86.f, -30.f, -1.f, -0.f, 0.f, 0.5f, 30.f,
                                 86.f,   87.5f,  88.f,  120.f,  1e30f, INFINITY, -INFINITY, NAN};
  const int64_t n = int64_t(xs.size());
  Graph g;
  Value x = input(g, {n}, "x");
  Value sig = sigmoid(x), sp = softplus(x);
  Executor ex(compile({sig, sp}));
  std::copy(xs.begin(), xs.end(), ex.input(x).ptr<float>());
  ex.run();
  HostTensor s = ex.read(sig), p = ex.read(sp);
  for (int64_t i = 0; i < n; ++i) {
    const float v = xs[size_t(i)];
    INFO("x = " << v);
    if (std::isnan(v)) {
      CHECK(std::isnan(s.at(i)));
      CHECK(std::isnan(p.at(i)));
    } else if (std::fabs(v) <= 87) {  // bit for bit the plain formulas
      CHECK(float(s.at(i)) == 1.0f / (1.0f + std::exp(-v)));
      CHECK(float(p.at(i)) == std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v))));
    } else {
      CHECK(s.at(i) == (v > 0 ? 1.0 : 0.0));
      CHECK(p.at(i) == (v > 0 ? double(v) : 0.0));
    }
  }
  // One BCE term per logit, against target 0: softplus(z).
  for (int64_t i = 0; i < n; ++i) {
    const float v = xs[size_t(i)];
    if (std::isnan(v) || std::isinf(v) || std::fabs(v) > 1e20f) continue;
    Graph g1;
    Value z = input(g1, {1}, "z"), t = input(g1, {1}, "t");
    Value l = bce_with_logits(z, t);
    Executor e1(compile({l}));
    *e1.input(z).ptr<float>() = v;
    *e1.input(t).ptr<float>() = 0;
    e1.run();
    INFO("z = " << v);
    CHECK(e1.read(l).at(0) == Approx(std::fabs(v) <= 87 ? std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v)))
                                                          : std::max(v, 0.0f)).epsilon(1e-6).margin(1e-30));
  }
}

TEST_CASE("broadcasting of rows, columns and scalars", "[forward]") {
  Graph g;
  Value a = input(g, {2, 3}, "a", DType::f64), row = input(g, {3}, "row", DType::f64),
        col = input(g, {2, 1}, "col", DType::f64);
  Value y = (a + row) * col - 1.0f;
  Executor ex(compile({y}));
  double* pa = ex.input(a).ptr<double>();
  double* pr = ex.input(row).ptr<double>();
  double* pc = ex.input(col).ptr<double>();
  for (int i = 0; i < 6; ++i) pa[i] = i;
  for (int j = 0; j < 3; ++j) pr[j] = 10 * (j + 1);
  pc[0] = 2;
  pc[1] = -1;
  ex.run();
  HostTensor out = ex.read(y);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) CHECK(out.at(i * 3 + j) == (pa[i * 3 + j] + pr[j]) * pc[i] - 1);
}

TEST_CASE("matmul with every transpose flag and a bias matches a naive product", "[forward]") {
  for (int flags = 0; flags < 4; ++flags) {
    const bool ta = flags & 1, tb = flags & 2;
    const int M = 5, K = 7, N = 3;
    Graph g;
    Value a = input(g, ta ? Shape{K, M} : Shape{M, K}, "a", DType::f64);
    Value b = input(g, tb ? Shape{N, K} : Shape{K, N}, "b", DType::f64);
    Value bias = input(g, {N}, "bias", DType::f64);
    Value y = matmul(a, b, ta, tb, bias);
    Executor ex(compile({y}));
    double *pa = ex.input(a).ptr<double>(), *pb = ex.input(b).ptr<double>(), *pbias = ex.input(bias).ptr<double>();
    for (int i = 0; i < M * K; ++i) pa[i] = std::sin(i + 1.0);
    for (int i = 0; i < K * N; ++i) pb[i] = std::cos(i + 2.0);
    for (int i = 0; i < N; ++i) pbias[i] = i;
    ex.run();
    HostTensor out = ex.read(y);
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double want = pbias[j];
        for (int k = 0; k < K; ++k) want += (ta ? pa[k * M + i] : pa[i * K + k]) * (tb ? pb[j * K + k] : pb[k * N + j]);
        CHECK(out.at(i * N + j) == Approx(want).epsilon(1e-12));
      }
  }
}

TEST_CASE("reductions and shape ops", "[forward]") {
  auto s0 = run_one({2, 3, 4}, ramp, [](Value x) { return sum(x, 1); });
  REQUIRE(s0.shape() == Shape{2, 4});
  CHECK(s0.at(0) == Approx(ramp(0) + ramp(4) + ramp(8)));
  CHECK(s0.at(7) == Approx(ramp(15) + ramp(19) + ramp(23)));
  auto m = run_one({4, 5}, ramp, [](Value x) { return mean(x); });
  CHECK(m.at(0) == Approx(0.25 * 9.5 - 1.0));
  auto sl = run_one({3, 5}, ramp, [](Value x) { return slice(x, 1, 2, 2); });
  CHECK(sl.shape() == Shape{3, 2});
  CHECK(sl.at(3) == ramp(8));
  auto pd = run_one({2, 2}, ramp, [](Value x) { return pad(x, 1, 1, 4); });
  CHECK(pd.at(0) == 0);
  CHECK(pd.at(1) == ramp(0));
  CHECK(pd.at(7) == 0);
  auto cc = run_one({2, 2}, ramp, [](Value x) { return concat({x, x * 2.0f}, 0); });
  CHECK(cc.shape() == Shape{4, 2});
  CHECK(cc.at(6) == 2 * ramp(2));
  // Twenty parts: one node, the same values.
  auto many = run_one({2, 20}, ramp, [](Value x) {
    std::vector<Value> columns;
    for (int64_t c = 0; c < 20; ++c) columns.push_back(slice(x, 1, c, 1));
    Value y = concat(columns, 1);
    CHECK(y.node().in.size() == 20);
    return y;
  });
  REQUIRE(many.shape() == Shape{2, 20});
  for (int64_t i = 0; i < 40; ++i) CHECK(many.at(i) == ramp(i));
  auto bc = run_one({3}, ramp, [](Value x) { return broadcast_to(x, {2, 3}); });
  CHECK(bc.at(5) == ramp(2));
  auto st = run_one({2, 3}, ramp, [](Value x) { return sum_to(x, {1, 3}); });
  CHECK(st.at(2) == Approx(ramp(2) + ramp(5)));
}

TEST_CASE("permute moves axes; where only axes of length 1 move it is a free reshape", "[forward]") {
  // y[a, b, c, d] = x[c, a, d, b] for every index, against the definition.
  const Shape xs{2, 3, 4, 5};
  auto y = run_one(xs, ramp, [](Value x) { return permute(x, {1, 3, 0, 2}); });
  REQUIRE(y.shape() == Shape{3, 5, 2, 4});
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t b = 0; b < 5; ++b)
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t d = 0; d < 4; ++d)
          CHECK(y.at(((a * 5 + b) * 2 + c) * 4 + d) == ramp(((c * 3 + a) * 4 + d) * 5 + b));
  auto t = run_one({3, 4}, ramp, [](Value x) { return transpose(x, -1, 0); });
  REQUIRE(t.shape() == Shape{4, 3});
  CHECK(t.at(1) == ramp(4));
  Graph g;
  Value x = input(g, {3, 1, 4}, "x");
  CHECK(permute(x, {0, 1, 2}).id == x.id);
  CHECK(permute(x, {1, 0, 2}).op() == OpCode::reshape);
  CHECK(permute(x, {2, 1, 0}).op() == OpCode::permute);
  CHECK_THROWS_WITH(permute(x, {0, 0, 1}), Contains("permute") && Contains("(0, 0, 1)") && Contains("[3, 1, 4]"));
  CHECK_THROWS_WITH(permute(x, {0, 3, 1}), Contains("permute") && Contains("[3, 1, 4]"));
  CHECK_THROWS_WITH(permute(x, {0, 1}), Contains("permute") && Contains("2 axes") && Contains("[3, 1, 4]"));
  CHECK_THROWS_WITH(transpose(x, 0, 3), Contains("transpose") && Contains("[3, 1, 4]"));
}

TEST_CASE("logsumexp is stable for large inputs", "[forward]") {
  auto y = run_one({2, 3}, [](int64_t i) { return 1000.0 * double(i % 3); }, [](Value x) { return logsumexp(x, 1); });
  CHECK(y.at(0) == Approx(2000 + std::log(1 + std::exp(-1000.0) + std::exp(-2000.0))));
  auto p = run_one({1, 4}, ramp, [](Value x) { return exp(log_softmax(x, 1)); });
  double total = 0;
  for (int i = 0; i < 4; ++i) total += p.at(i);
  CHECK(total == Approx(1.0).epsilon(1e-12));
}

TEST_CASE("softmax over the last axis of groups: the definition, stable for large logits", "[forward]") {
  // [2, 3, 4]: six groups of four; one group's logits are in the thousands.
  auto fill = [](int64_t i) { return i < 4 ? 1000.0 * double(i) : std::sin(double(i)) * 3.0; };
  auto p = run_one({2, 3, 4}, fill, [](Value x) { return softmax(x, 2); });
  auto lp = run_one({2, 3, 4}, fill, [](Value x) { return log_softmax(x, -1); });
  for (int64_t group = 0; group < 6; ++group) {
    double top = -1e300, total = 0;
    for (int k = 0; k < 4; ++k) top = std::max(top, fill(group * 4 + k));
    for (int k = 0; k < 4; ++k) total += std::exp(fill(group * 4 + k) - top);
    for (int k = 0; k < 4; ++k) {
      const int64_t i = group * 4 + k;
      const double log_p = fill(i) - top - std::log(total);
      CHECK(lp.at(i) == Approx(log_p).margin(1e-12));
      CHECK(p.at(i) == Approx(std::exp(log_p)).margin(1e-15));
    }
  }
}

TEST_CASE("float logsumexp over rows: the exact value, special rows, the same bits on any thread count", "[forward]") {
  // The CPU backend's vectorised row kernel: lengths around its 16 lanes and a row of pixels,
  // rows of large values, -inf, +inf and NaN (NaN wins, even over an infinity); compared with a
  // long double reference.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t n : {1, 15, 16, 17, 33, 784}) {
    const int64_t rows = 7;
    std::vector<float> x(size_t(rows * n));
    for (int64_t i = 0; i < rows * n; ++i) x[size_t(i)] = float(std::sin(0.7 * double(i)) * 30.0);
    for (int64_t k = 0; k < n; ++k) {
      x[size_t(1 * n + k)] += 1000.0f;   // large: shifted by the maximum
      x[size_t(2 * n + k)] = -inf;       // nothing: -inf
    }
    x[size_t(3 * n + n / 2)] = inf;   // +inf
    x[size_t(4 * n + n - 1)] = nan;   // NaN
    if (n > 1) x[size_t(4 * n)] = inf;
    x[size_t(5 * n)] = -inf;          // one -inf among finite values
    auto run = [&](int threads) {
      set_num_threads(threads);
      Graph g;
      Value v = input(g, {rows, n}, "x");
      Value y = logsumexp(v, 1);
      Executor ex(compile({y}));
      std::copy(x.begin(), x.end(), ex.input(v).ptr<float>());
      ex.run();
      HostTensor h = ex.read(y);
      set_num_threads(0);
      return std::vector<float>(h.ptr<float>(), h.ptr<float>() + rows);
    };
    const std::vector<float> one = run(1), two = run(2), three = run(3);
    INFO("n = " << n);
    CHECK(std::memcmp(one.data(), two.data(), sizeof(float) * size_t(rows)) == 0);
    CHECK(std::memcmp(one.data(), three.data(), sizeof(float) * size_t(rows)) == 0);
    for (int64_t r : {0, 1, 5, 6}) {
      if (r == 5 && n == 1) {  // the row is that one -inf
        CHECK(one[5] == -inf);
        continue;
      }
      long double m = -INFINITY, total = 0;
      for (int64_t k = 0; k < n; ++k) m = std::max(m, (long double)x[size_t(r * n + k)]);
      for (int64_t k = 0; k < n; ++k) total += std::exp((long double)x[size_t(r * n + k)] - m);
      CHECK(one[size_t(r)] == Approx(double(m + std::log(total))).epsilon(1e-6));
    }
    CHECK(one[2] == -inf);
    CHECK(one[3] == inf);
    CHECK(std::isnan(one[4]));
  }
}

TEST_CASE("losses compute their formulas", "[forward]") {
  Graph g;
  Value p = input(g, {2, 2}, "p", DType::f64), t = input(g, {2, 2}, "t", DType::f64);
  Value l_bce = bce(p, t), l_logit = bce_with_logits(p, t), l_mse = mse(p, t), l_kl = kl_normal(p, t);
  Executor ex(compile({l_bce, l_logit, l_mse, l_kl}));
  const double pv[] = {0.2, 0.7, 0.9, 0.5}, tv[] = {0, 1, 0.3, 1};
  std::copy(pv, pv + 4, ex.input(p).ptr<double>());
  std::copy(tv, tv + 4, ex.input(t).ptr<double>());
  ex.run();
  double bce_want = 0, logit_want = 0, mse_want = 0, kl_want = 0;
  for (int i = 0; i < 4; ++i) {
    bce_want -= (tv[i] * std::log(pv[i]) + (1 - tv[i]) * std::log(1 - pv[i])) / 4;
    double s = 1 / (1 + std::exp(-pv[i]));
    logit_want -= (tv[i] * std::log(s) + (1 - tv[i]) * std::log(1 - s)) / 4;
    mse_want += (pv[i] - tv[i]) * (pv[i] - tv[i]) / 4;
    kl_want += -0.5 * (1 + tv[i] - pv[i] * pv[i] - std::exp(tv[i])) / 2;  // summed per row, mean of 2 rows
  }
  CHECK(ex.read_scalar(l_bce) == Approx(bce_want).epsilon(1e-12));
  CHECK(ex.read_scalar(l_logit) == Approx(logit_want).epsilon(1e-12));
  CHECK(ex.read_scalar(l_mse) == Approx(mse_want).epsilon(1e-12));
  CHECK(ex.read_scalar(l_kl) == Approx(kl_want).epsilon(1e-12));
}

TEST_CASE("bce stays finite at probabilities 0 and 1", "[forward]") {
  Graph g;
  Value p = input(g, {2}, "p", DType::f32), t = input(g, {2}, "t", DType::f32);
  Value l = bce(p, t);
  Executor ex(compile({l}));
  float* pp = ex.input(p).ptr<float>();
  float* pt = ex.input(t).ptr<float>();
  pp[0] = 0; pp[1] = 1; pt[0] = 1; pt[1] = 0;
  ex.run();
  CHECK(ex.read_scalar(l) == Approx(100.0));  // each log floored at -100
}

TEST_CASE("Philox4x32-10 reproduces the published known answers", "[random]") {
  // Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32 10 rounds).
  fn::Philox4x32 zero(0, 0, 0, 0, 0, 0);
  CHECK(zero.c[0] == 0x6627e8d5u);
  CHECK(zero.c[1] == 0xe169c58du);
  CHECK(zero.c[2] == 0xbc57ac4cu);
  CHECK(zero.c[3] == 0x9b00dbd8u);
  fn::Philox4x32 ones(~0u, ~0u, ~0u, ~0u, ~0u, ~0u);
  CHECK(ones.c[0] == 0x408f276du);
  CHECK(ones.c[1] == 0x41c83b0eu);
  CHECK(ones.c[2] == 0xa20bc7c6u);
  CHECK(ones.c[3] == 0x6d5451fdu);
  fn::Philox4x32 pi(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  CHECK(pi.c[0] == 0xd16cfe09u);
  CHECK(pi.c[1] == 0x94fdccebu);
  CHECK(pi.c[2] == 0x5001e420u);
  CHECK(pi.c[3] == 0x24126ea1u);
}

TEST_CASE("random fills have the right statistics and change with the step", "[random]") {
  Graph g;
  HostTensor step_buf(Shape{}, DType::f32);
  Value step = external(g, step_buf.view(), "step");
  const int64_t n = 200000;
  Value u = uniform(step, {n}, 42, -1, 3), z = normal(step, {n}, 42, 1, 2), b = bernoulli(step, {n}, 42, 0.3f);
  Executor ex(compile({u, z, b}));
  auto moments = [&](Value v) {
    HostTensor h = ex.read(v);
    double m = 0, s = 0;
    for (int64_t i = 0; i < n; ++i) m += h.at(i);
    m /= n;
    for (int64_t i = 0; i < n; ++i) s += (h.at(i) - m) * (h.at(i) - m);
    return std::pair{m, s / n};
  };
  ex.run();
  auto [um, uv] = moments(u);
  CHECK(um == Approx(1.0).margin(0.02));
  CHECK(uv == Approx(16.0 / 12).margin(0.02));
  auto [zm, zv] = moments(z);
  CHECK(zm == Approx(1.0).margin(0.02));
  CHECK(zv == Approx(4.0).margin(0.05));
  auto [bm, bv] = moments(b);
  CHECK(bm == Approx(0.3).margin(0.005));
  HostTensor first = ex.read(z);
  ex.run();
  CHECK(ex.read(z).at(0) == first.at(0));  // same step: same noise
  step_buf.set(0, 1);
  ex.run();
  CHECK(ex.read(z).at(0) != first.at(0));  // next step: new noise
}

TEST_CASE("reductions give the same bits whatever the thread count", "[forward]") {
  const int64_t n = 1 << 20;
  auto run = [&](int threads) {
    set_num_threads(threads);
    auto out = run_one({n}, [](int64_t i) { return std::sin(double(i)) * 1e3; }, [](Value x) { return sum(x); });
    return out.at(0);
  };
  double one = run(1), two = run(2), three = run(3);
  set_num_threads(0);
  CHECK(one == two);
  CHECK(one == three);
}

TEST_CASE("the CPU's vectorised normal fill is the normal draw, on any thread count", "[random]") {
  // The fill computes Box-Muller 64 Philox blocks at a time through glibc's vector functions;
  // each value must be NormalDraw::draw4's up to their rounding, past block boundaries and in a
  // last part-block (n % 4), with the same bits on one, two and three threads.
  const int64_t n = 70003;  // 17500 blocks of four (273 runs of 64 and a part) and three more
  auto fill = [&](int threads, Attrs* attrs) {
    set_num_threads(threads);
    Graph g;
    HostTensor step_buf(Shape{}, DType::f32);
    step_buf.set(0, 5);
    Value z = normal(external(g, step_buf.view(), "step"), {n}, 42, 1, 2);
    *attrs = z.node().attrs;
    Executor ex(compile({z}));
    ex.run();
    HostTensor h = ex.read(z);
    set_num_threads(0);
    return std::vector<float>(h.ptr<float>(), h.ptr<float>() + n);
  };
  Attrs attrs;
  const std::vector<float> one = fill(1, &attrs), two = fill(2, &attrs), three = fill(3, &attrs);
  CHECK(one == two);
  CHECK(one == three);
  const fn::NormalDraw draw(attrs);
  double worst = 0;
  for (int64_t group = 0; group * 4 < n; ++group) {
    float want[4];
    draw.draw4<float>(uint64_t(group), 5, want);
    for (int64_t j = 0; j < 4 && group * 4 + j < n; ++j)
      worst = std::max(worst, double(std::abs(one[size_t(group * 4 + j)] - want[j])) / (1.0 + std::abs(want[j])));
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("matrix products on 1-3 threads are within float's bound of the exact product, and repeat their bits", "[forward][numbers]") {
  // The CPU backend cuts a product into bands of C's rows or columns, one OpenBLAS call per
  // thread, or runs a small one on one thread; whatever it does, every element keeps the
  // contract's bound (ag::testing::check_product), and the same thread count gives the same
  // bits twice. The tutorial's products (K = 784, 150, 128), the deep model's (K = 1000), the
  // VAE's heads and code layer (N or M of 20), every transpose, a bias.
  struct Case { int64_t m, k, n; bool ta, tb, bias; };
  const Case cases[] = {{150, 784, 128, false, true, true},  {150, 128, 784, false, true, true},
                        {784, 150, 128, true, false, false}, {128, 150, 784, true, false, false},
                        {150, 1000, 500, false, false, false}, {1000, 150, 784, true, true, false},
                        {150, 400, 20, false, true, true},   {20, 150, 400, true, false, false},
                        {150, 250, 30, false, true, true},   {130, 700, 250, true, true, true},
                        {100, 64, 100, false, true, true},   {64, 600, 64, false, false, false}};
  auto sines = [](int64_t n, double phase) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(std::sin(0.37 * double(i) + phase));
    return v;
  };
  for (const Case& c : cases) {
    const std::vector<float> a = sines(c.m * c.k, 0), b = sines(c.k * c.n, 1),
                             bias = c.bias ? sines(c.n, 2) : std::vector<float>{};
    for (int threads : {1, 2, 3}) {
      INFO(c.m << "x" << c.k << " * " << c.k << "x" << c.n << " ta " << c.ta << " tb " << c.tb << ", " << threads
                << " threads");
      set_num_threads(threads);
      const std::vector<float> once = ag::testing::run_product(c.m, c.k, c.n, c.ta, c.tb, a, b, bias),
                               again = ag::testing::run_product(c.m, c.k, c.n, c.ta, c.tb, a, b, bias);
      set_num_threads(0);
      const ag::testing::ProductCheck r = ag::testing::check_product(c.m, c.k, c.n, c.ta, c.tb, a, b, bias, once);
      CHECK(r.worst <= 1.0);
      CHECK(r.nan_mismatches == 0);
      CHECK(std::memcmp(once.data(), again.data(), once.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("the product's bound is tight enough to catch a wrong product", "[forward][numbers]") {
  // A product that lost one of its 784 terms in one element (a wrong cut of K would do that)
  // must fail the check: the bound is K ulps of |A||B| (here 0.015 of 319), and the term 0.19.
  const int64_t m = 4, k = 784, n = 3;
  std::vector<float> a(size_t(m * k)), b(size_t(k * n));
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(std::sin(0.1 * double(i)));
  for (size_t i = 0; i < b.size(); ++i) b[i] = float(std::cos(0.2 * double(i)));
  std::vector<float> c = ag::testing::run_product(m, k, n, false, false, a, b);
  CHECK(ag::testing::check_product(m, k, n, false, false, a, b, {}, c).worst <= 1.0);
  c[1 * n + 2] -= a[1 * k + k - 1] * b[(k - 1) * n + 2];  // row 1, column 2 without its last term
  CHECK(ag::testing::check_product(m, k, n, false, false, a, b, {}, c).worst > 1.0);
}

TEST_CASE("shape errors name the op and both shapes", "[errors]") {
  Graph g;
  Value a = input(g, {2, 3}, "a"), b = input(g, {4, 5}, "b");
  CHECK_THROWS_WITH(matmul(a, b), Contains("matmul") && Contains("[2, 3]") && Contains("[4, 5]"));
  CHECK_THROWS_WITH(a + b, Contains("add") && Contains("[2, 3]") && Contains("[4, 5]"));
  CHECK_THROWS_WITH(bce(a, b), Contains("bce") && Contains("[2, 3]") && Contains("[4, 5]"));
  CHECK_THROWS_WITH(reshape(a, {7}), Contains("reshape") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(slice(a, 1, 2, 5), Contains("slice"));
  CHECK_THROWS_WITH(concat({a, b}, 0), Contains("concat") && Contains("[4, 5]"));
  CHECK_THROWS_WITH(sum(a, 3), Contains("sum_axis") && Contains("axis 3"));
  Value d = input(g, {2, 3}, "d", DType::f64);
  CHECK_THROWS_WITH(a * d, Contains("mul") && Contains("f64"));
  CHECK_THROWS_WITH(activation(a, "swish"), Contains("swish"));
}
