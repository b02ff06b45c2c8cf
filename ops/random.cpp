// Random fills from the counter RNG: element i of node k at step s is word i % 4 of Philox(seed, k; i / 4, s),
// so the noise is the same on every backend and thread split, and new at every step.
#include <fmt/format.h>

#include "ops/ops.h"
#include "ops/registry.h"

namespace ag {

namespace {

Shape random_rule(const Node& n, const Shape* in) {
  if (in[0].numel() != 1) shape_error(n, in, "the step counter must be a scalar");
  return n.attrs.shape;
}
void bw_random(const Value&, const Value&, Value*) {}  // the step counter is not differentiable

Value draw(OpCode op, Value step, Shape shape, uint64_t seed, float p0, float p1) {
  Attrs a;
  a.shape = shape;
  a.i[0] = int64_t(seed);
  a.i[1] = step.graph->size();  // the stream: this node's id
  a.f[0] = p0;
  a.f[1] = p1;
  return step.graph->add(op, {step}, a, step.dtype());
}

}  // namespace

void register_random_ops(OpInfo* t) {
  set_op(t, OpCode::uniform, OpKind::random, 1, true, random_rule, bw_random);
  set_op(t, OpCode::normal, OpKind::random, 1, true, random_rule, bw_random);
  set_op(t, OpCode::bernoulli, OpKind::random, 1, true, random_rule, bw_random);
}

Value uniform(Value step, Shape shape, uint64_t seed, float lo, float hi) {
  return draw(OpCode::uniform, step, shape, seed, lo, hi);
}
Value normal(Value step, Shape shape, uint64_t seed, float mean, float stddev) {
  return draw(OpCode::normal, step, shape, seed, mean, stddev);
}
Value bernoulli(Value step, Shape shape, uint64_t seed, float p) {
  if (!(p >= 0 && p <= 1)) throw Error(fmt::format("bernoulli: probability {} is outside [0, 1]", p));
  return draw(OpCode::bernoulli, step, shape, seed, p, 0);
}

}  // namespace ag
