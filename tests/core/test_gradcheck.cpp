// Gradient checks for every op, driven by the op table: first order (analytic gradient against
// central differences, in f64) for every row, second order (the gradient of <grad, v>) for every
// row whose op is smooth, and a guard that every op in the op list has a backward rule and a row.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include <fmt/format.h>

#include "op_table.h"

using namespace ag;
using ag::testing::OpCase;
using ag::testing::op_cases;

namespace {

struct Check {
  Graph g;
  std::vector<Value> inputs;
  Value objective;
  std::vector<Value> grads;
};

// A fixed, irregular weighting of an output, so sum(out * w) sees every element differently.
Value weighted_sum(Value out) {
  HostTensor w(out.shape(), DType::f64);
  for (int64_t i = 0; i < w.numel(); ++i) w.set(i, 0.3 + 0.7 * std::sin(1.7 * double(i) + 0.4));
  return sum(out * constant(*out.graph, w));
}

void build(Check& c, const OpCase& oc) {
  for (size_t k = 0; k < oc.inputs.size(); ++k)
    c.inputs.push_back(input(c.g, oc.inputs[k].shape, fmt::format("x{}", k), DType::f64));
  c.objective = weighted_sum(oc.build(c.g, c.inputs));
}

// Central differences of `objective` with respect to every input element, compared with `grads`.
void compare_with_differences(Executor& ex, const std::vector<Value>& inputs, Value objective,
                              const std::vector<Value>& grads, const std::string& what) {
  const double h = 1e-6;
  ex.run();
  std::vector<HostTensor> analytic;
  for (const Value& gv : grads) analytic.push_back(ex.read(gv));
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (ex.plan().storage[size_t(inputs[k].id)] != Storage::input) {
      // The objective does not depend on this input at all: its gradient must be zero.
      for (int64_t i = 0; i < inputs[k].shape().numel(); ++i) CHECK(analytic[k].at(i) == 0);
      continue;
    }
    double* x = ex.input(inputs[k]).ptr<double>();
    for (int64_t i = 0; i < inputs[k].shape().numel(); ++i) {
      const double saved = x[i];
      x[i] = saved + h;
      ex.run();
      const double up = ex.read_scalar(objective);
      x[i] = saved - h;
      ex.run();
      const double down = ex.read_scalar(objective);
      x[i] = saved;
      const double numeric = (up - down) / (2 * h), exact = analytic[k].at(i);
      INFO(what << ": input " << k << " element " << i << " analytic " << exact << " numeric " << numeric);
      CHECK(std::abs(exact - numeric) <= 1e-6 * std::max({1.0, std::abs(exact), std::abs(numeric)}));
    }
  }
}

void fill_inputs(Executor& ex, const std::vector<Value>& inputs, const OpCase& oc) {
  for (size_t k = 0; k < inputs.size(); ++k)
    if (ex.plan().storage[size_t(inputs[k].id)] == Storage::input)
      ag::testing::fill_case_input(oc.inputs[k], int(k), ex.input(inputs[k]).ptr<double>());
}

}  // namespace

TEST_CASE("every op has a backward rule and a row in the op table", "[gradcheck]") {
  std::set<int> covered;
  for (const OpCase& oc : op_cases()) covered.insert(int(oc.op));
  for (int op = 0; op < op_count; ++op) {
    INFO("op " << op_name(OpCode(op)));
    CHECK(op_info(OpCode(op)).backward != nullptr);
    CHECK(op_info(OpCode(op)).shape != nullptr);
    CHECK(covered.count(op) == 1);
  }
}

TEST_CASE("stop_gradient passes the values and stops the gradient", "[gradcheck]") {
  Graph g;
  Value x = input(g, {3, 4}, "x", DType::f64);
  Value detached = stop_gradient(square(x));
  Value objective = sum(x * detached) + sum(detached);  // d/dx = x^2 (the detached factor only)
  std::vector<Value> d = grad(objective, {x});
  Executor ex(compile({objective, d[0], detached}));
  ag::testing::fill_case_input({{3, 4}, -1, 1}, 0, ex.input(x).ptr<double>());
  ex.run();
  HostTensor xs = ex.read(x), dx = ex.read(d[0]), det = ex.read(detached);
  for (int64_t i = 0; i < 12; ++i) {
    CHECK(det.at(i) == xs.at(i) * xs.at(i));
    CHECK(dx.at(i) == xs.at(i) * xs.at(i));
  }
  // A loss that reaches x only through the detach has no path to it at all.
  CHECK(grad(sum(detached), {x})[0].op() == OpCode::constant);
}

TEST_CASE("slices that tile an axis get their gradient as one concat, equal to the sum of their pads", "[gradcheck]") {
  // x [3, 10] read as slices: [0, 2) [2, 6) [6, 10) tile axis 1 (used in any order); [0, 4) and
  // [5, 10) leave a gap; [0, 6) and [4, 10) overlap; ten slices of one column tile it too, more
  // than one concat takes (joined in groups). Each slice goes through its own function.
  using Slices = std::vector<std::pair<int64_t, int64_t>>;
  Slices columns;
  for (int64_t c : {3, 0, 9, 1, 2, 8, 4, 5, 7, 6}) columns.push_back({c, 1});
  for (const Slices& slices : {Slices{{6, 4}, {0, 2}, {2, 4}}, Slices{{0, 4}, {5, 5}}, Slices{{0, 6}, {4, 6}}, columns}) {
    Graph g;
    Value x = input(g, {3, 10}, "x", DType::f64);
    Value objective;
    for (size_t k = 0; k < slices.size(); ++k) {
      Value part = slice(x, 1, slices[k].first, slices[k].second);
      Value term = weighted_sum(k == 0 ? sigmoid(part) : k == 1 ? tanh(part) * 2.0f : square(part));
      objective = objective.valid() ? objective + term : term;
    }
    const Value dx = grad(objective, {x})[0];
    const bool tiles = slices.size() == 3 || slices.size() == columns.size();
    INFO("slices tile the axis: " << tiles << "; gradient op " << op_name(dx.op()));
    CHECK((dx.op() == OpCode::concat) == tiles);
    Executor ex(compile({objective, dx}));
    ag::testing::fill_case_input({{3, 10}, -1, 1}, 0, ex.input(x).ptr<double>());
    compare_with_differences(ex, {x}, objective, {dx}, "slices");
  }
}

TEST_CASE("a weight used in several products gets its gradient as one stacked product", "[gradcheck]") {
  // w [4, 3] used three times, as an RNN uses its recurrent weight: x_k [r_k, 4] w, rows 2, 3, 5.
  // Its gradient sum_k x_k^T g_k is one product concat(x)^T concat(g), with K = 10.
  Graph g;
  Value w = input(g, {4, 3}, "w", DType::f64);
  std::vector<Value> xs;
  Value objective;
  for (int64_t rows : {2, 3, 5}) {
    xs.push_back(input(g, {rows, 4}, fmt::format("x{}", xs.size()), DType::f64));
    Value y = matmul(xs.back(), w);
    Value term = weighted_sum(xs.size() == 1 ? tanh(y) : xs.size() == 2 ? sigmoid(y) : square(y));
    objective = objective.valid() ? objective + term : term;
  }
  std::vector<Value> wrt = xs;
  wrt.insert(wrt.begin(), w);
  const std::vector<Value> d = grad(objective, wrt);
  CHECK(d[0].op() == OpCode::matmul);
  CHECK(d[0].input(0).shape() == Shape{10, 4});
  Executor ex(compile({objective, d[0], d[1], d[2], d[3]}));
  for (size_t k = 0; k < wrt.size(); ++k)
    ag::testing::fill_case_input({wrt[k].shape(), -1, 1}, int(k), ex.input(wrt[k]).ptr<double>());
  compare_with_differences(ex, wrt, objective, d, "stacked products");
}

TEST_CASE("first-order gradients match central differences", "[gradcheck]") {
  for (const OpCase& oc : op_cases()) {
    SECTION(oc.name) {
      Check c;
      build(c, oc);
      c.grads = grad(c.objective, c.inputs);
      std::vector<Value> outs = {c.objective};
      outs.insert(outs.end(), c.grads.begin(), c.grads.end());
      Executor ex(compile(outs));
      fill_inputs(ex, c.inputs, oc);
      compare_with_differences(ex, c.inputs, c.objective, c.grads, oc.name);
    }
  }
}

TEST_CASE("second-order gradients of smooth ops match central differences", "[gradcheck]") {
  for (const OpCase& oc : op_cases()) {
    if (!op_info(oc.op).smooth) continue;
    SECTION(oc.name) {
      Check c;
      build(c, oc);
      // s = sum_k <dL/dx_k, v_k>; its gradient is the Hessian times v.
      std::vector<Value> first = grad(c.objective, c.inputs);
      Value s;
      for (const Value& d : first) {
        Value term = weighted_sum(d);
        s = s.valid() ? s + term : term;
      }
      std::vector<Value> second = grad(s, c.inputs);
      std::vector<Value> outs = {s};
      outs.insert(outs.end(), second.begin(), second.end());
      Executor ex(compile(outs));
      fill_inputs(ex, c.inputs, oc);
      compare_with_differences(ex, c.inputs, s, second, oc.name + " (second order)");
    }
  }
}
