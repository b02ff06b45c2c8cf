// Batch normalisation's training pass as three ops, so that a layer's forward is one kernel and
// its backward two (the weight's and the input's gradients) plus the bias's column sum, where
// the same arithmetic as graph code takes some thirty elementwise ops and reductions:
//
//   batch_norm(x, w, b)     y = (x - mean) / sqrt(var + eps) * w + b, per feature (column) of
//                           x [B, F]; mean and the biased var over the batch (its rows)
//   batch_norm_dw(x, g)     sum over the batch of g * xhat, xhat = (x - mean) / sqrt(var + eps)
//   batch_norm_dx(x, w, g)  w / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat))
//   batch_moments(x)        [2, F]: the batch's mean (row 0) and biased variance (row 1), for
//                           the running statistics
//
// Each computes the batch's statistics itself. The two gradient ops differentiate again through
// their definition as ordinary graph code (reference_* below): their own gradients are that
// code's, built by grad(), so a gradient of a gradient works as for every op.
#include <fmt/format.h>

#include "graph/autodiff.h"
#include "ops/ops.h"
#include "ops/registry.h"

namespace ag {

namespace {

float eps_of(const Value& y) { return y.node().attrs.f[0]; }

// The normalised batch as graph code: the definition the ops are checked against.
Value reference_xhat(Value x, float eps) {
  Value d = x - mean(x, 0);
  return d / sqrt(mean(square(d), 0) + eps);
}
Value reference_dw(Value x, Value g, float eps) { return sum(g * reference_xhat(x, eps), 0); }
Value reference_dx(Value x, Value w, Value g, float eps) {
  Value xhat = reference_xhat(x, eps);
  Value d = x - mean(x, 0);
  Value rstd = 1.0f / sqrt(mean(square(d), 0) + eps);
  return w * rstd * (g - mean(g, 0) - xhat * mean(g * xhat, 0));
}

Value reference_moments(Value x) {
  const Shape row{1, x.shape()[1]};
  Value m = mean(x, 0);
  return concat({reshape(m, row), reshape(mean(square(x - m), 0), row)}, 0);
}

void check_batch(const Node& n, const Shape* in) {
  if (in[0].rank != 2 || in[0][0] < 2) shape_error(n, in, "x must be a [batch, features] matrix with a batch of at least 2");
}
Shape batch_norm_rule(const Node& n, const Shape* in) {
  check_batch(n, in);
  const int64_t f = in[0][1];
  if (in[1] != Shape{f} || in[2] != Shape{f}) shape_error(n, in, fmt::format("weight and bias must be [{}]", f));
  return in[0];
}
Shape batch_norm_dw_rule(const Node& n, const Shape* in) {
  check_batch(n, in);
  if (in[1] != in[0]) shape_error(n, in, "g must have x's shape");
  return Shape{in[0][1]};
}
Shape batch_norm_dx_rule(const Node& n, const Shape* in) {
  check_batch(n, in);
  if (in[1] != Shape{in[0][1]}) shape_error(n, in, fmt::format("weight must be [{}]", in[0][1]));
  if (in[2] != in[0]) shape_error(n, in, "g must have x's shape");
  return in[0];
}

Shape batch_moments_rule(const Node& n, const Shape* in) {
  if (in[0].rank != 2 || in[0][0] < 1) shape_error(n, in, "x must be a [batch, features] matrix");
  return Shape{2, in[0][1]};
}

void bw_batch_norm(const Value& y, const Value& g, Value* d) {
  const float eps = eps_of(y);
  d[0] = batch_norm_dx(y.input(0), y.input(1), g, eps);
  d[1] = batch_norm_dw(y.input(0), g, eps);
  d[2] = sum(g, 0);
}
// The gradients of the gradient ops: their reference code's, through grad() with g as the seed.
// Partial derivatives: each input enters the reference through a fresh alias (a reshape node to
// its own shape, free at run time), and grad() is taken with respect to the aliases, so it does
// not also follow one input back through another (g depends on x) and count that path twice.
// The result stays differentiable: an alias passes its gradient on.
std::vector<Value> partials(const Value& y, const Value& g, Value (*reference)(const std::vector<Value>&, float)) {
  std::vector<Value> in;
  for (int k = 0; k < int(y.node().in.size()); ++k) {
    Attrs same;
    same.shape = y.input(k).shape();
    in.push_back(y.graph->add(OpCode::reshape, {y.input(k)}, same));
  }
  return grad(reference(in, eps_of(y)), in, g);
}
Value dw_of(const std::vector<Value>& in, float eps) { return reference_dw(in[0], in[1], eps); }
Value dx_of(const std::vector<Value>& in, float eps) { return reference_dx(in[0], in[1], in[2], eps); }
Value moments_of(const std::vector<Value>& in, float) { return reference_moments(in[0]); }
void bw_batch_moments(const Value& y, const Value& g, Value* d) { d[0] = partials(y, g, moments_of)[0]; }
void bw_batch_norm_dw(const Value& y, const Value& g, Value* d) {
  const std::vector<Value> r = partials(y, g, dw_of);
  d[0] = r[0];
  d[1] = r[1];
}
void bw_batch_norm_dx(const Value& y, const Value& g, Value* d) {
  const std::vector<Value> r = partials(y, g, dx_of);
  for (int k = 0; k < 3; ++k) d[k] = r[size_t(k)];
}

Attrs eps_attrs(float eps) {
  Attrs a;
  a.f[0] = eps;
  return a;
}

}  // namespace

void register_norm_ops(OpInfo* t) {
  set_op(t, OpCode::batch_norm, OpKind::reduce, 3, true, batch_norm_rule, bw_batch_norm);
  set_op(t, OpCode::batch_norm_dw, OpKind::reduce, 2, true, batch_norm_dw_rule, bw_batch_norm_dw);
  set_op(t, OpCode::batch_norm_dx, OpKind::reduce, 3, true, batch_norm_dx_rule, bw_batch_norm_dx);
  set_op(t, OpCode::batch_moments, OpKind::reduce, 1, true, batch_moments_rule, bw_batch_moments);
}

Value batch_norm(Value x, Value weight, Value bias, float eps) {
  return x.graph->add(OpCode::batch_norm, {x, weight, bias}, eps_attrs(eps));
}
Value batch_norm_dw(Value x, Value g, float eps) { return x.graph->add(OpCode::batch_norm_dw, {x, g}, eps_attrs(eps)); }
Value batch_norm_dx(Value x, Value weight, Value g, float eps) {
  return x.graph->add(OpCode::batch_norm_dx, {x, weight, g}, eps_attrs(eps));
}

Value batch_moments(Value x) { return x.graph->add(OpCode::batch_moments, {x}); }

}  // namespace ag
