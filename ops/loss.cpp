// Losses: scalars scale * sum_i term(a_i, b_i), the terms in ops/functors.h. Forward is one
// fused, deterministic reduction; backward is built from ordinary ops, so it differentiates again.
#include <fmt/format.h>

#include "ops/ops.h"
#include "ops/registry.h"

namespace ag {

namespace {

Shape loss_rule(const Node& n, const Shape* in) {
  if (in[0] != in[1]) shape_error(n, in, "both operands must have the same shape");
  return Shape{};
}

// g * scale, the factor every elementwise gradient of a loss carries.
Value scaled(const Value& y, const Value& g) { return g * y.node().attrs.f[0]; }

// d/dp = (p - t) / (p (1 - p)), d/dt = log(1 - p) - log(p), logs floored at -100 as in the forward.
void bw_bce(const Value& y, const Value& g, Value* d) {
  Value p = y.input(0), t = y.input(1), s = scaled(y, g);
  d[0] = s * (p - t) / clamp(p * (1.0f - p), 1e-12f, 1e30f);
  d[1] = s * (clamp(log(1.0f - p), -100.0f, 1e30f) - clamp(log(p), -100.0f, 1e30f));
}
// d/dz = sigmoid(z) - t, d/dt = -z.
void bw_bce_with_logits(const Value& y, const Value& g, Value* d) {
  Value z = y.input(0), t = y.input(1), s = scaled(y, g);
  d[0] = s * (sigmoid(z) - t);
  d[1] = neg(s * z);
}
void bw_mse(const Value& y, const Value& g, Value* d) {
  Value diff = (y.input(0) - y.input(1)) * 2.0f, s = scaled(y, g);
  d[0] = s * diff;
  d[1] = neg(s * diff);
}
// d/dmu = mu, d/dlv = (e^lv - 1) / 2.
void bw_kl_normal(const Value& y, const Value& g, Value* d) {
  Value s = scaled(y, g);
  d[0] = s * y.input(0);
  d[1] = s * ((exp(y.input(1)) - 1.0f) * 0.5f);
}

Value loss(OpCode op, Value a, Value b, double scale) {
  Attrs at;
  at.f[0] = float(scale);
  return a.graph->add(op, {a, b}, at);
}

}  // namespace

void register_loss_ops(OpInfo* t) {
  set_op(t, OpCode::bce, OpKind::loss, 2, true, loss_rule, bw_bce);
  set_op(t, OpCode::bce_with_logits, OpKind::loss, 2, true, loss_rule, bw_bce_with_logits);
  set_op(t, OpCode::mse, OpKind::loss, 2, true, loss_rule, bw_mse);
  set_op(t, OpCode::kl_normal, OpKind::loss, 2, true, loss_rule, bw_kl_normal);
}

Value bce(Value p, Value target) { return loss(OpCode::bce, p, target, 1.0 / double(p.shape().numel())); }
Value bce_with_logits(Value z, Value target) {
  return loss(OpCode::bce_with_logits, z, target, 1.0 / double(z.shape().numel()));
}
Value mse(Value a, Value b) { return loss(OpCode::mse, a, b, 1.0 / double(a.shape().numel())); }
Value kl_normal(Value mu, Value logvar) { return loss(OpCode::kl_normal, mu, logvar, 1.0 / double(mu.shape().rows())); }

}  // namespace ag
