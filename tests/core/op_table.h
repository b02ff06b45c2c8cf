// The op table: one row per op, shared by the gradient checks (first and second order) and by
// the CUDA parity tests. A row names the op it covers, its inputs (shape and value range) and
// how to build it from those inputs.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "graph/aegraph.h"

namespace ag::testing {

struct InputSpec {
  Shape shape;
  double lo = -1, hi = 1;  // inputs are drawn uniformly from [lo, hi]
};

struct OpCase {
  std::string name;
  OpCode op;  // the op this row covers
  std::vector<InputSpec> inputs;
  std::function<Value(Graph&, const std::vector<Value>&)> build;
};

const std::vector<OpCase>& op_cases();

// Fills input k of a case with deterministic values in its range.
void fill_case_input(const InputSpec& spec, int k, double* out);

}  // namespace ag::testing
