// Listing a plan's matrix products and timing each alone as a one-op plan.
#include "tools/aebench/gemm_floor.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "tools/aebench/stats.h"

namespace ag::bench {

bool MatmulShape::operator==(const MatmulShape& o) const {
  bool same_attrs = true;
  for (int i = 0; i < 4; ++i) same_attrs = same_attrs && attrs.i[i] == o.attrs.i[i];
  return op == o.op && same_attrs && out == o.out && a == o.a && b == o.b && transpose_a == o.transpose_a &&
         transpose_b == o.transpose_b && bias == o.bias && dtype == o.dtype;
}

std::string MatmulShape::str() const {
  if (op != OpCode::matmul)
    return fmt::format("{} {} * {}{} (stride {}, padding {})", op_name(op), a.str(), b.str(), bias ? " + bias" : "",
                       attrs.i[0], attrs.i[1]);
  auto operand = [](const Shape& s, bool t) {
    return t ? fmt::format("({}x{})^T", s[0], s[1]) : fmt::format("{}x{}", s[0], s[1]);
  };
  return fmt::format("{} * {}{}", operand(a, transpose_a), operand(b, transpose_b), bias ? " + bias" : "");
}

std::vector<MatmulShape> plan_matmuls(const Plan& plan) {
  std::vector<MatmulShape> out;
  const Graph& g = *plan.graph;
  for (int id : plan.steps) {
    const Node& node = g.node(id);
    if (node.op == OpCode::conv2d || node.op == OpCode::conv_transpose2d || node.op == OpCode::conv2d_filter_grad) {
      MatmulShape s;
      s.op = node.op;
      s.attrs = node.attrs;
      s.out = node.shape;
      s.a = g.node(node.in[0]).shape;
      s.b = g.node(node.in[1]).shape;
      s.bias = node.in.size() == 3;
      s.dtype = node.dtype;
      // The multiply-adds, from the image side, the filters and the map side of the product.
      const Shape& image = node.op == OpCode::conv2d ? s.a : node.op == OpCode::conv_transpose2d ? s.out : s.a;
      const Shape& filters = node.op == OpCode::conv2d_filter_grad ? s.out : s.b;
      const Shape& map = node.op == OpCode::conv2d ? s.out : node.op == OpCode::conv_transpose2d ? s.a : s.b;
      s.m = map[0] * map[2] * map[3];                   // images x output positions
      s.n = filters[0];                                 // output channels
      s.k = image[1] * filters[2] * filters[3];         // one patch
      out.push_back(s);
      continue;
    }
    if (node.op != OpCode::matmul) continue;
    MatmulShape s;
    s.a = g.node(node.in[0]).shape;
    s.b = g.node(node.in[1]).shape;
    s.transpose_a = node.attrs.i[0] != 0;
    s.transpose_b = node.attrs.i[1] != 0;
    s.bias = node.in.size() == 3;
    s.m = node.shape[0];
    s.n = node.shape[1];
    s.k = s.transpose_a ? s.a[0] : s.a[1];
    s.dtype = node.dtype;
    out.push_back(s);
  }
  return out;
}

double total_flops(const std::vector<MatmulShape>& matmuls) {
  double f = 0;
  for (const MatmulShape& s : matmuls) f += s.flops();
  return f;
}

// One product as its own plan: operands (and the bias) are parameters of a private store, so
// they live on the device and persist like the step's weights and activations do.
struct GemmFloor::OneOp {
  ParamStore operands;
  Graph graph;
  std::unique_ptr<Executor> exec;

  OneOp(const MatmulShape& s, Device device, uint64_t seed) : operands(device, s.dtype, seed) {
    const int a = operands.add("a", s.a, Init::Uniform(-1, 1));
    const int b = operands.add("b", s.b, Init::Uniform(-1, 1));
    const int64_t bias_len = s.op == OpCode::matmul ? s.n : s.out[1];
    const int bias = s.bias ? operands.add("bias", Shape{bias_len}, Init::Uniform(-1, 1)) : -1;
    std::vector<Value> in = {operands.value(graph, a), operands.value(graph, b)};
    if (bias >= 0) in.push_back(operands.value(graph, bias));
    // The same node as the step's: its op, its inputs, its attributes.
    Attrs at = s.attrs;
    if (s.op == OpCode::matmul) {
      at.i[0] = s.transpose_a;
      at.i[1] = s.transpose_b;
    }
    Value c = graph.add(s.op, in, at, s.dtype);
    exec = std::make_unique<Executor>(compile({c}), device);
  }
};

GemmFloor::GemmFloor(const std::vector<MatmulShape>& matmuls, Device device, uint64_t seed) : device_(device) {
  std::vector<MatmulShape> distinct;
  for (const MatmulShape& s : matmuls) {
    auto at = std::find(distinct.begin(), distinct.end(), s);
    if (at == distinct.end()) {
      distinct.push_back(s);
      ops_.push_back(std::make_unique<OneOp>(s, device, seed));
      at = distinct.end() - 1;
    }
    use_.push_back(int(at - distinct.begin()));
  }
}

GemmFloor::~GemmFloor() = default;

std::vector<double> GemmFloor::measure_ms(int runs) {
  using clock = std::chrono::steady_clock;
  Backend& be = backend(device_);
  std::vector<double> median_ms(ops_.size());
  std::vector<double> times(size_t(std::max(runs, 1)));
  for (size_t i = 0; i < ops_.size(); ++i) {
    Executor& ex = *ops_[i]->exec;
    ex.run();  // warm-up: first touch; on CUDA the second run is the graph capture
    ex.run();
    be.synchronize();
    for (double& t : times) {
      const auto start = clock::now();
      ex.run();
      be.synchronize();
      t = std::chrono::duration<double, std::milli>(clock::now() - start).count();
    }
    median_ms[i] = median(times);
  }
  std::vector<double> per_product;
  for (int k : use_) per_product.push_back(median_ms[size_t(k)]);
  return per_product;
}

}  // namespace ag::bench
