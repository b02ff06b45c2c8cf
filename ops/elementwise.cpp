// Unary and binary elementwise ops: shape rules and backward rules, side by side.
// The scalar math is in ops/functors.h; here is only what the graph needs to know.
#include <fmt/format.h>

#include "ops/broadcast.h"
#include "ops/ops.h"
#include "ops/registry.h"

namespace ag {

namespace {

Shape same_shape(const Node&, const Shape* in) { return in[0]; }

Shape broadcast_rule(const Node& n, const Shape* in) {
  Shape out;
  Broadcast2D plan;
  if (!broadcast_shape(in[0], in[1], &out)) shape_error(n, in, "shapes do not broadcast");
  if (!broadcast_plan(in[0], in[1], out, &plan))
    shape_error(n, in, "only scalars, rows and columns broadcast against a tensor");
  return out;
}

Value unary(OpCode op, Value x, Attrs a = {}) { return x.graph->add(op, {x}, a); }
Value binary(OpCode op, Value a, Value b, Attrs at = {}) { return a.graph->add(op, {a, b}, at); }
Attrs two(float f0, float f1) {
  Attrs a;
  a.f[0] = f0;
  a.f[1] = f1;
  return a;
}

// Backward rules. `out` is the node, g the gradient flowing into it; grads[k] is input k's.
// Binary rules sum the gradient back to each input's shape (undoing the broadcast).
void bw_neg(const Value&, const Value& g, Value* d) { d[0] = neg(g); }
void bw_exp(const Value& y, const Value& g, Value* d) { d[0] = g * y; }
void bw_log(const Value& y, const Value& g, Value* d) { d[0] = g / y.input(0); }
void bw_sqrt(const Value& y, const Value& g, Value* d) { d[0] = (g / y) * 0.5f; }
void bw_square(const Value& y, const Value& g, Value* d) { d[0] = g * y.input(0) * 2.0f; }
void bw_abs(const Value& y, const Value& g, Value* d) { d[0] = g * sign(y.input(0)); }
void bw_sign(const Value&, const Value&, Value*) {}  // zero almost everywhere
void bw_relu(const Value& y, const Value& g, Value* d) { d[0] = relu_grad(y.input(0), g); }
void bw_sigmoid(const Value& y, const Value& g, Value* d) { d[0] = sigmoid_grad(y, g); }
void bw_tanh(const Value& y, const Value& g, Value* d) { d[0] = tanh_grad(y, g); }
void bw_softplus(const Value& y, const Value& g, Value* d) { d[0] = g * sigmoid(y.input(0)); }
void bw_clamp(const Value& y, const Value& g, Value* d) {
  const Attrs& a = y.node().attrs;
  d[0] = clamp_grad(y.input(0), g, a.f[0], a.f[1]);
}
void bw_affine(const Value& y, const Value& g, Value* d) { d[0] = affine(g, y.node().attrs.f[0], 0.0f); }

void bw_add(const Value& y, const Value& g, Value* d) {
  d[0] = sum_to(g, y.input(0).shape());
  d[1] = sum_to(g, y.input(1).shape());
}
void bw_sub(const Value& y, const Value& g, Value* d) {
  d[0] = sum_to(g, y.input(0).shape());
  d[1] = sum_to(neg(g), y.input(1).shape());
}
void bw_mul(const Value& y, const Value& g, Value* d) {
  d[0] = sum_to(g * y.input(1), y.input(0).shape());
  d[1] = sum_to(g * y.input(0), y.input(1).shape());
}
void bw_div(const Value& y, const Value& g, Value* d) {  // d(a/b)/db = -a/b^2 = -(a/b)/b
  Value b = y.input(1);
  d[0] = sum_to(g / b, y.input(0).shape());
  d[1] = sum_to(neg(g * y / b), b.shape());
}
// relu_grad(x, h) = h [x > 0]: zero slope in x almost everywhere, linear in h.
void bw_relu_grad(const Value& y, const Value& g, Value* d) {
  d[1] = sum_to(relu_grad(y.input(0), g), y.input(1).shape());
}
// sigmoid_grad(s, h) = h s (1 - s): d/ds = h (1 - 2s), d/dh = s (1 - s).
void bw_sigmoid_grad(const Value& y, const Value& g, Value* d) {
  Value s = y.input(0), h = y.input(1);
  d[0] = sum_to(g * h * (1.0f - 2.0f * s), s.shape());
  d[1] = sum_to(sigmoid_grad(s, g), h.shape());
}
// tanh_grad(t, h) = h (1 - t^2): d/dt = -2 h t, d/dh = 1 - t^2.
void bw_tanh_grad(const Value& y, const Value& g, Value* d) {
  Value t = y.input(0), h = y.input(1);
  d[0] = sum_to(g * h * t * -2.0f, t.shape());
  d[1] = sum_to(tanh_grad(t, g), h.shape());
}
void bw_clamp_grad(const Value& y, const Value& g, Value* d) {
  const Attrs& a = y.node().attrs;
  d[1] = sum_to(clamp_grad(y.input(0), g, a.f[0], a.f[1]), y.input(1).shape());
}

}  // namespace

void register_elementwise_ops(OpInfo* t) {
  using K = OpKind;
  set_op(t, OpCode::neg, K::unary, 1, true, same_shape, bw_neg);
  set_op(t, OpCode::exp, K::unary, 1, true, same_shape, bw_exp);
  set_op(t, OpCode::log, K::unary, 1, true, same_shape, bw_log);
  set_op(t, OpCode::sqrt, K::unary, 1, true, same_shape, bw_sqrt);
  set_op(t, OpCode::square, K::unary, 1, true, same_shape, bw_square);
  set_op(t, OpCode::abs, K::unary, 1, false, same_shape, bw_abs);
  set_op(t, OpCode::sign, K::unary, 1, false, same_shape, bw_sign);
  set_op(t, OpCode::relu, K::unary, 1, false, same_shape, bw_relu);
  set_op(t, OpCode::sigmoid, K::unary, 1, true, same_shape, bw_sigmoid);
  set_op(t, OpCode::tanh, K::unary, 1, true, same_shape, bw_tanh);
  set_op(t, OpCode::softplus, K::unary, 1, true, same_shape, bw_softplus);
  set_op(t, OpCode::clamp, K::unary, 1, false, same_shape, bw_clamp);
  set_op(t, OpCode::affine, K::unary, 1, true, same_shape, bw_affine);
  set_op(t, OpCode::add, K::binary, 2, true, broadcast_rule, bw_add);
  set_op(t, OpCode::sub, K::binary, 2, true, broadcast_rule, bw_sub);
  set_op(t, OpCode::mul, K::binary, 2, true, broadcast_rule, bw_mul);
  set_op(t, OpCode::div, K::binary, 2, true, broadcast_rule, bw_div);
  set_op(t, OpCode::relu_grad, K::binary, 2, false, broadcast_rule, bw_relu_grad);
  set_op(t, OpCode::sigmoid_grad, K::binary, 2, true, broadcast_rule, bw_sigmoid_grad);
  set_op(t, OpCode::tanh_grad, K::binary, 2, true, broadcast_rule, bw_tanh_grad);
  set_op(t, OpCode::clamp_grad, K::binary, 2, false, broadcast_rule, bw_clamp_grad);
}

Value neg(Value x) { return unary(OpCode::neg, x); }
Value exp(Value x) { return unary(OpCode::exp, x); }
Value log(Value x) { return unary(OpCode::log, x); }
Value sqrt(Value x) { return unary(OpCode::sqrt, x); }
Value square(Value x) { return unary(OpCode::square, x); }
Value abs(Value x) { return unary(OpCode::abs, x); }
Value sign(Value x) { return unary(OpCode::sign, x); }
Value relu(Value x) { return unary(OpCode::relu, x); }
Value sigmoid(Value x) { return unary(OpCode::sigmoid, x); }
Value tanh(Value x) { return unary(OpCode::tanh, x); }
Value softplus(Value x) { return unary(OpCode::softplus, x); }
Value clamp(Value x, float lo, float hi) {
  if (!(lo <= hi)) throw Error(fmt::format("clamp: lo {} is above hi {}", lo, hi));
  return unary(OpCode::clamp, x, two(lo, hi));
}
Value affine(Value x, float a, float b) { return unary(OpCode::affine, x, two(a, b)); }
Value add(Value a, Value b) { return binary(OpCode::add, a, b); }
Value sub(Value a, Value b) { return binary(OpCode::sub, a, b); }
Value mul(Value a, Value b) { return binary(OpCode::mul, a, b); }
Value div(Value a, Value b) { return binary(OpCode::div, a, b); }
// A product kept where a batch top-k chose (the gradient that reaches the winner-take-all
// autoencoder's code) is one masked product, so that a backend computes only the kept entries
// (k of the batch per column) and not the whole product. The product's own node is then unused
// and the plan drops it, unless something else reads it.
Value relu_grad(Value x, Value g) {
  if (x.node().op == OpCode::batch_topk_mask && g.node().op == OpCode::matmul && g.node().in.size() == 2 &&
      g.shape() == x.shape())
    return masked_matmul(g.input(0), g.input(1), x, g.node().attrs.i[0], g.node().attrs.i[1]);
  return binary(OpCode::relu_grad, x, g);
}
Value sigmoid_grad(Value y, Value g) { return binary(OpCode::sigmoid_grad, y, g); }
Value tanh_grad(Value y, Value g) { return binary(OpCode::tanh_grad, y, g); }
Value clamp_grad(Value x, Value g, float lo, float hi) { return binary(OpCode::clamp_grad, x, g, two(lo, hi)); }

Value activation(Value x, const std::string& name) {
  if (name == "relu") return relu(x);
  if (name == "sigmoid") return sigmoid(x);
  if (name == "tanh") return tanh(x);
  if (name == "softplus") return softplus(x);
  if (name == "linear" || name == "identity" || name == "none") return x;
  throw Error(fmt::format("activation: unknown name '{}' (relu, sigmoid, tanh, softplus, linear)", name));
}

Value operator+(Value a, Value b) { return add(a, b); }
Value operator-(Value a, Value b) { return sub(a, b); }
Value operator*(Value a, Value b) { return mul(a, b); }
Value operator/(Value a, Value b) { return div(a, b); }
Value operator-(Value a) { return neg(a); }
Value operator+(Value a, float s) { return affine(a, 1.0f, s); }
Value operator+(float s, Value a) { return affine(a, 1.0f, s); }
Value operator-(Value a, float s) { return affine(a, 1.0f, -s); }
Value operator-(float s, Value a) { return affine(a, -1.0f, s); }
Value operator*(Value a, float s) { return affine(a, s, 0.0f); }
Value operator*(float s, Value a) { return affine(a, s, 0.0f); }
Value operator/(Value a, float s) { return affine(a, 1.0f / s, 0.0f); }
Value operator/(float s, Value a) { return div(constant(*a.graph, s, {}, a.dtype()), a); }

}  // namespace ag
