// Collective ops: allreduce_sum, the one op a data-parallel step adds to the graph. It packs its
// inputs (a "bucket" of gradients) into one flat vector and sums that vector over
// every rank of the installed communicator (backends/communicator.h), in place; with one rank it
// is the packing alone. Being a node, it is planned like any other step: the plan runs it as soon
// as its bucket's gradients exist, so the backward pass of earlier layers follows it.
#include <fmt/format.h>

#include "ops/ops.h"
#include "ops/registry.h"

namespace ag {

namespace {

Shape allreduce_rule(const Node& n, const Shape* in) {
  if (n.in.empty()) shape_error(n, in, "needs at least one input");
  int64_t total = 0;
  for (size_t k = 0; k < n.in.size(); ++k) total += in[k].numel();
  return Shape{total};
}

// Every rank reads the same sum y = sum_r pack(x_r), so the total objective sum_r L_r(y) has
// the gradient sum_r dL_r/dy in each rank's x: the allreduce of the incoming gradient, unpacked.
void bw_allreduce(const Value& y, const Value& g, Value* d) {
  const std::vector<Value> parts = allreduce_sum_each({g});
  Value sum = reshape(parts[0], y.shape());
  int64_t at = 0;
  for (size_t k = 0; k < y.node().in.size(); ++k) {
    const Shape& s = y.input(int(k)).shape();
    d[k] = reshape(slice(sum, 0, at, s.numel()), s);
    at += s.numel();
  }
}

}  // namespace

void register_collective_ops(OpInfo* t) {
  set_op(t, OpCode::allreduce_sum, OpKind::collective, -1, true, allreduce_rule, bw_allreduce);
}

Value allreduce_sum(const std::vector<Value>& parts) {
  if (parts.empty()) throw Error("allreduce_sum: needs at least one input");
  return parts[0].graph->add(OpCode::allreduce_sum, parts);
}

std::vector<Value> allreduce_sum_each(const std::vector<Value>& parts) {
  const Value sum = allreduce_sum(parts);
  std::vector<Value> out;
  int64_t at = 0;
  for (const Value& p : parts) {
    out.push_back(reshape(slice(sum, 0, at, p.shape().numel()), p.shape()));
    at += p.shape().numel();
  }
  return out;
}

}  // namespace ag
