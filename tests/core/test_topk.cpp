// Batch top-k against its definition: per column, the rows sorted by key (larger first, a NaN
// above every number, equal keys by row) and the first k kept. Ties and NaNs, keys apart from
// values, f32 and f64, the same result on 1-3 threads, the gradient (the same selection of the
// incoming gradient), and shape errors that name the op.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "graph/aegraph.h"

using namespace ag;
using Catch::Matchers::Contains;

namespace {

// The definition, column by column, written independently of ops/topk.h.
std::vector<double> reference(const std::vector<double>& keys, const std::vector<double>& values, int64_t rows,
                              int64_t cols, int64_t k) {
  std::vector<double> out(keys.size(), 0.0);
  for (int64_t j = 0; j < cols; ++j) {
    std::vector<int64_t> order(static_cast<size_t>(rows));
    std::iota(order.begin(), order.end(), 0);
    auto key = [&](int64_t i) { return keys[size_t(i * cols + j)]; };
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      if (std::isnan(key(a)) || std::isnan(key(b))) return std::isnan(key(a)) && !std::isnan(key(b));
      return key(a) > key(b);
    });
    for (int64_t r = 0; r < k; ++r) out[size_t(order[size_t(r)] * cols + j)] = values[size_t(order[size_t(r)] * cols + j)];
  }
  return out;
}

void put(Tensor t, int64_t i, double v) {
  if (t.dtype == DType::f32) t.ptr<float>()[i] = float(v);
  else t.ptr<double>()[i] = v;
}

std::vector<double> run(DType dtype, const std::vector<double>& keys, const std::vector<double>& values, int64_t rows,
                        int64_t cols, int64_t k) {
  Graph g;
  Value kv = input(g, {rows, cols}, "keys", dtype), vv = input(g, {rows, cols}, "values", dtype);
  Value y = batch_topk_at(kv, vv, k);
  Executor ex(compile({y}));
  for (int64_t i = 0; i < rows * cols; ++i) {
    put(ex.input(kv), i, keys[size_t(i)]);
    put(ex.input(vv), i, values[size_t(i)]);
  }
  ex.run();
  HostTensor out = ex.read(y);
  std::vector<double> got(size_t(out.numel()));
  for (int64_t i = 0; i < out.numel(); ++i) got[size_t(i)] = out.at(i);
  return got;
}

// v as the dtype holds it (the keys of these cases are exact in either).
std::vector<double> in(DType t, std::vector<double> v) {
  if (t == DType::f32)
    for (double& x : v) x = double(float(x));
  return v;
}

std::vector<double> filled(int64_t n, double scale, int64_t seed) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = std::sin(double(i * 7 + seed) * 0.731) * scale;
  return v;
}

}  // namespace

TEST_CASE("batch top-k keeps each column's k largest over the batch", "[forward][topk]") {
  const int64_t rows = 150, cols = 97;
  std::vector<double> keys = filled(rows * cols, 3.0, 1), values = filled(rows * cols, 1.0, 5);
  SECTION("distinct keys, keys apart from values, f32 and f64") {
    for (int64_t k : {1, 8, 75, 150})
      for (DType t : {DType::f64, DType::f32}) {
        INFO("k " << k << " " << to_string(t));
        std::vector<double> want = reference(keys, values, rows, cols, k), got = run(t, keys, values, rows, cols, k);
        if (t == DType::f32) {  // compare against the definition on the float-rounded keys
          std::vector<double> kf(keys.size()), vf(values.size());
          for (size_t i = 0; i < keys.size(); ++i) kf[i] = double(float(keys[i])), vf[i] = double(float(values[i]));
          want = reference(kf, vf, rows, cols, k);
        }
        CHECK(got == want);
      }
  }
  SECTION("ties go to the lower row, NaN keys rank first") {
    for (double& v : keys) v = std::max(0.0, std::round(v));  // mostly 0, 1, 2, 3: many ties
    for (int64_t i = 0; i < rows * cols; i += 13) keys[size_t(i)] = std::numeric_limits<double>::quiet_NaN();
    for (DType t : {DType::f64, DType::f32}) {
      INFO(to_string(t));
      CHECK(run(t, keys, values, rows, cols, 10) == reference(keys, in(t, values), rows, cols, 10));
    }
  }
  SECTION("negative keys, signed zeros (equal), infinities; f32 and f64") {
    const double inf = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < keys.size(); ++i) {
      keys[i] = std::round(keys[i] * 2.0) / 2.0 - 1.0;  // -4 .. 2 in halves, so many ties
      if (keys[i] == 0.0 && i % 2) keys[i] = -0.0;
      if (i % 29 == 0) keys[i] = i % 58 ? inf : -inf;
      if (i % 31 == 0) keys[i] = std::numeric_limits<double>::quiet_NaN();
    }
    for (int64_t k : {1, 3, 8, 40, 149})
      for (DType t : {DType::f64, DType::f32}) {
        INFO("k " << k << " " << to_string(t));
        CHECK(run(t, keys, values, rows, cols, k) == reference(keys, in(t, values), rows, cols, k));
      }
  }
  SECTION("the same result on 1, 2 and 3 threads") {
    set_num_threads(1);
    std::vector<double> one = run(DType::f32, keys, values, rows, cols, 8);
    set_num_threads(2);
    std::vector<double> two = run(DType::f32, keys, values, rows, cols, 8);
    set_num_threads(3);
    std::vector<double> three = run(DType::f32, keys, values, rows, cols, 8);
    set_num_threads(0);
    CHECK(one == two);
    CHECK(one == three);
  }
}

TEST_CASE("batch top-k's gradient is the same selection of the incoming gradient", "[forward][topk]") {
  Graph g;
  Value x = input(g, {6, 3}, "x", DType::f64), w = input(g, {6, 3}, "w", DType::f64);
  Value loss = sum(batch_topk(x, 2) * w);
  Value dx = grad(loss, {x})[0];
  Executor ex(compile({dx}));
  std::vector<double> xs = filled(18, 2.0, 3), ws = filled(18, 1.0, 9);
  for (int64_t i = 0; i < 18; ++i) {
    put(ex.input(x), i, xs[size_t(i)]);
    put(ex.input(w), i, ws[size_t(i)]);
  }
  ex.run();
  HostTensor got = ex.read(dx);
  std::vector<double> want = reference(xs, ws, 6, 3, 2);
  for (int64_t i = 0; i < 18; ++i) CHECK(got.at(i) == want[size_t(i)]);
}

TEST_CASE("batch top-k refuses what it cannot select from, naming the op", "[errors][topk]") {
  Graph g;
  Value a = input(g, {4, 3}, "a"), b = input(g, {4, 5}, "b"), c = input(g, {2, 2, 3}, "c");
  CHECK_THROWS_WITH(batch_topk(a, 5), Contains("batch_topk_mask") && Contains("k = 5") && Contains("[4, 3]"));
  CHECK_THROWS_WITH(batch_topk(a, 0), Contains("batch_topk_mask") && Contains("k = 0"));
  CHECK_THROWS_WITH(batch_topk_at(a, b, 2), Contains("batch_topk_at") && Contains("[4, 5]"));
  CHECK_THROWS_WITH(batch_topk(c, 1), Contains("batch_topk_mask") && Contains("[2, 2, 3]"));
}
