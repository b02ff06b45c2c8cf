// What a step's products cost on their own. plan_matmuls lists every product the compiled plan
// runs: its matmuls (shapes, transpose flags, bias) and its convolutions (conv2d,
// conv_transpose2d, conv2d_filter_grad: operand shapes, attributes, bias). GemmFloor times each
// distinct one as a one-op plan on the same device, with the same shapes, its operands
// persistent device buffers like parameters (nothing uploaded per run). The sum of those times
// is the step's floor ("GEMM floor", or for the convolutional models a conv floor): what the
// step would take if everything but its products were free.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/aegraph.h"

namespace ag::bench {

struct MatmulShape {
  OpCode op = OpCode::matmul;  // or one of the three convolutions
  Attrs attrs;                 // convolutions: stride, padding, ...
  Shape out;                   // convolutions: the output's shape
  Shape a, b;                 // operand shapes as stored (before the transpose flags)
  bool transpose_a = false, transpose_b = false;
  bool bias = false;
  int64_t m = 0, n = 0, k = 0;  // C [m, n] = op(A) [m, k] op(B) [k, n]; a convolution: m n k = its multiply-adds
  DType dtype = DType::f32;

  double flops() const { return 2.0 * double(m) * double(n) * double(k); }
  bool operator==(const MatmulShape& o) const;
  std::string str() const;    // "150x784 * (128x784)^T + bias", "conv2d [150, 1, 28, 28] * [16, 1, 3, 3] + bias"
};

std::vector<MatmulShape> plan_matmuls(const Plan& plan);
double total_flops(const std::vector<MatmulShape>& matmuls);

class GemmFloor {
 public:
  GemmFloor(const std::vector<MatmulShape>& matmuls, Device device, uint64_t seed = 0);
  ~GemmFloor();
  GemmFloor(const GemmFloor&) = delete;
  GemmFloor& operator=(const GemmFloor&) = delete;

  // Runs each distinct product `runs` times (after two warm-up runs) and returns, for each
  // product of the step in plan order, its median run time in milliseconds. Their sum is the floor.
  std::vector<double> measure_ms(int runs);

 private:
  struct OneOp;
  std::vector<std::unique_ptr<OneOp>> ops_;  // distinct products
  std::vector<int> use_;                     // per product of the step: its entry in ops_
  Device device_;
};

}  // namespace ag::bench
