// Matrix product with transpose flags and an optional bias row: C = op(A) op(B) + 1 b^T.
// Transposes are flags, never strided views; every backward product is one more matmul.
#include <fmt/format.h>

#include "ops/ops.h"
#include "ops/registry.h"

namespace ag {

namespace {

// op(A) op(B)'s shape, from in[0] and in[1].
Shape product_shape(const Node& n, const Shape* in) {
  if (in[0].rank != 2 || in[1].rank != 2) shape_error(n, in, "both operands must be matrices");
  bool ta = n.attrs.i[0], tb = n.attrs.i[1];
  int64_t m = ta ? in[0][1] : in[0][0], ka = ta ? in[0][0] : in[0][1];
  int64_t kb = tb ? in[1][1] : in[1][0], nn = tb ? in[1][0] : in[1][1];
  if (ka != kb)
    shape_error(n, in, fmt::format("inner dimensions {} and {} differ (transpose flags {}, {})", ka, kb, ta, tb));
  return Shape{m, nn};
}

Shape matmul_rule(const Node& n, const Shape* in) {
  if (n.in.size() != 2 && n.in.size() != 3) shape_error(n, in, "takes a, b and an optional bias");
  const Shape c = product_shape(n, in);
  const int64_t nn = c[1];
  if (n.in.size() == 3 && !(in[2].numel() == nn && in[2].cols() == nn))
    shape_error(n, in, fmt::format("bias must be a row of {} values", nn));
  return c;
}

// C = op(A) op(B). With G = dC:  A B -> dA = G B^T, dB = A^T G;  A^T B -> dA = B G^T, dB = A G;
// A B^T -> dA = G B, dB = G^T A;  A^T B^T -> dA = B^T G^T, dB = G^T A^T.
void product_grads(Value a, Value b, bool ta, bool tb, Value g, Value* d) {
  if (!ta && !tb) { d[0] = matmul(g, b, false, true); d[1] = matmul(a, g, true, false); }
  if (ta && !tb) { d[0] = matmul(b, g, false, true); d[1] = matmul(a, g, false, false); }
  if (!ta && tb) { d[0] = matmul(g, b, false, false); d[1] = matmul(g, a, true, false); }
  if (ta && tb) { d[0] = matmul(b, g, true, true); d[1] = matmul(g, a, true, true); }
}
void bw_matmul(const Value& y, const Value& g, Value* d) {
  product_grads(y.input(0), y.input(1), y.node().attrs.i[0], y.node().attrs.i[1], g, d);
  if (y.node().in.size() == 3) d[2] = sum_to(g, y.input(2).shape());
}

// masked_matmul(a, b, mask): C = op(A) op(B) where mask > 0, zero elsewhere (mask the shape
// of C). Linear in A and B; the mask only chooses (no gradient), so dC reaches the product
// through the same mask: the gradients are matmul's with G = relu_grad(mask, dC).
Shape masked_matmul_rule(const Node& n, const Shape* in) {
  if (n.in.size() != 3) shape_error(n, in, "takes a, b and a mask");
  const Shape c = product_shape(n, in);
  if (in[2] != c) shape_error(n, in, fmt::format("the mask must have the product's shape, {}", c.str()));
  return c;
}
void bw_masked_matmul(const Value& y, const Value& g, Value* d) {
  product_grads(y.input(0), y.input(1), y.node().attrs.i[0], y.node().attrs.i[1], relu_grad(y.input(2), g), d);
}

}  // namespace

void register_matmul_ops(OpInfo* t) {
  set_op(t, OpCode::matmul, OpKind::matmul, -1, true, matmul_rule, bw_matmul);
  set_op(t, OpCode::masked_matmul, OpKind::matmul, 3, true, masked_matmul_rule, bw_masked_matmul);
}

Value matmul(Value a, Value b, bool transpose_a, bool transpose_b, Value bias) {
  Attrs at;
  at.i[0] = transpose_a;
  at.i[1] = transpose_b;
  if (bias.valid()) return a.graph->add(OpCode::matmul, {a, b, bias}, at);
  return a.graph->add(OpCode::matmul, {a, b}, at);
}

Value masked_matmul(Value a, Value b, Value mask, bool transpose_a, bool transpose_b) {
  Attrs at;
  at.i[0] = transpose_a;
  at.i[1] = transpose_b;
  return a.graph->add(OpCode::masked_matmul, {a, b, mask}, at);
}

Value linear(Value x, Value weight, Value bias) { return matmul(x, weight, false, true, bias); }

}  // namespace ag
