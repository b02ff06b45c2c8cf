// Batch normalisation's ops (and batch_moments, for the running statistics) against their definition as graph code (the mean and biased
// variance over the batch): the forward pass, and the two gradient ops against grad() of that
// code, in f64 and f32, a width past one block of columns, on 1-3 threads with the same bits;
// shape errors that name the op.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "graph/aegraph.h"

using namespace ag;
using Catch::Matchers::Contains;

namespace {

Value reference(Value x, Value w, Value b, float eps) {
  Value d = x - mean(x, 0);
  return d / sqrt(mean(square(d), 0) + eps) * w + b;
}

void fill(Executor& ex, Value v, double scale, int seed) {
  Tensor t = ex.input(v);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double x = std::sin(double(i * 7 + seed) * 0.913) * scale + 0.1 * seed;
    if (t.dtype == DType::f32) t.ptr<float>()[i] = float(x);
    else t.ptr<double>()[i] = x;
  }
}

std::vector<double> values(const HostTensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.at(i);
  return v;
}

// The ops' y, dx, dw, db and moments, and the reference's, for x [rows, cols].
struct Both {
  std::vector<std::vector<double>> ops, ref;
};
Both run(DType dtype, int64_t rows, int64_t cols) {
  Graph g;
  Value x = input(g, {rows, cols}, "x", dtype), w = input(g, {cols}, "w", dtype), b = input(g, {cols}, "b", dtype),
        up = input(g, {rows, cols}, "up", dtype);
  const float eps = 1e-5f;
  Value y = batch_norm(x, w, b, eps), yr = reference(x, w, b, eps);
  std::vector<Value> d = grad(sum(y * up), {x, w, b}), dr = grad(sum(yr * up), {x, w, b});
  Value mr = mean(x, 0), moments_ref = concat({reshape(mr, {1, cols}), reshape(mean(square(x - mr), 0), {1, cols})}, 0);
  std::vector<Value> outs{y, d[0], d[1], d[2], batch_moments(x), yr, dr[0], dr[1], dr[2], moments_ref};
  Executor ex(compile(outs));
  fill(ex, x, 3.0, 1);
  fill(ex, w, 1.0, 2);
  fill(ex, b, 1.0, 3);
  fill(ex, up, 1.0, 4);
  ex.run();
  Both r;
  for (int k = 0; k < 5; ++k) r.ops.push_back(values(ex.read(outs[size_t(k)])));
  for (int k = 5; k < 10; ++k) r.ref.push_back(values(ex.read(outs[size_t(k)])));
  return r;
}

}  // namespace

TEST_CASE("batch norm's ops agree with their definition as graph code", "[forward][norm]") {
  for (DType t : {DType::f64, DType::f32})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{150, 128}, {7, 130}, {2, 3}}) {
      INFO(to_string(t) << " [" << rows << ", " << cols << "]");
      const Both r = run(t, rows, cols);
      const double tol = t == DType::f64 ? 1e-7 : 2e-5;  // f64: mean()'s 1/B is a float attribute
      const char* what[] = {"y", "dx", "dw", "db", "moments"};
      for (int k = 0; k < 5; ++k) {
        INFO(what[k]);
        double worst = 0;
        for (size_t i = 0; i < r.ops[size_t(k)].size(); ++i)
          worst = std::max(worst, std::abs(r.ops[size_t(k)][i] - r.ref[size_t(k)][i]) / (1 + std::abs(r.ref[size_t(k)][i])));
        CHECK(worst <= tol);
      }
    }
}

TEST_CASE("batch norm's ops give the same bits on 1, 2 and 3 threads", "[forward][norm][numbers]") {
  std::vector<std::vector<double>> first;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    const Both r = run(DType::f32, 150, 200);
    if (first.empty()) first = r.ops;
    else CHECK(r.ops == first);
  }
  set_num_threads(0);
}

TEST_CASE("batch norm refuses what it cannot normalise, naming the op", "[errors][norm]") {
  Graph g;
  Value x = input(g, {4, 3}, "x"), one = input(g, {1, 3}, "one"), w = input(g, {3}, "w"), w4 = input(g, {4}, "w4"),
        cube = input(g, {2, 2, 3}, "cube");
  CHECK_THROWS_WITH(batch_norm(one, w, w, 1e-5f), Contains("batch_norm") && Contains("at least 2"));
  CHECK_THROWS_WITH(batch_norm(cube, w, w, 1e-5f), Contains("batch_norm") && Contains("[2, 2, 3]"));
  CHECK_THROWS_WITH(batch_norm(x, w4, w, 1e-5f), Contains("batch_norm") && Contains("must be [3]"));
  CHECK_THROWS_WITH(batch_norm_dx(x, w, one, 1e-5f), Contains("batch_norm_dx") && Contains("g must have x's shape"));
  CHECK_THROWS_WITH(batch_norm_dw(x, cube, 1e-5f), Contains("batch_norm_dw") && Contains("g must have x's shape"));
}

