// Reductions and their inverse, broadcasting: sum over everything or one axis, broadcast_to.
// mean and sum_to are compositions of these. Kernels reduce deterministically (fixed chunking).
// Also batch top-k, a selection over the batch axis (the winner-take-all autoencoder's).
#include <fmt/format.h>

#include "ops/broadcast.h"
#include "ops/ops.h"
#include "ops/registry.h"

namespace ag {

namespace {

Shape sum_all_rule(const Node&, const Shape*) { return Shape{}; }

Shape sum_axis_rule(const Node& n, const Shape* in) {
  int axis = int(n.attrs.i[0]);
  if (axis < 0 || axis >= in[0].rank) shape_error(n, in, fmt::format("axis {} is out of range", axis));
  int64_t d[Shape::max_rank];
  int r = 0;
  for (int k = 0; k < in[0].rank; ++k)
    if (k != axis) d[r++] = in[0].dim[k];
  return Shape::of(d, r);
}

Shape broadcast_to_rule(const Node& n, const Shape* in) {
  Shape out;
  if (!broadcast_shape(in[0], n.attrs.shape, &out) || out != n.attrs.shape)
    shape_error(n, in, fmt::format("cannot broadcast to {}", n.attrs.shape.str()));
  return out;
}

// The gradient of a sum is the incoming gradient spread back over the summed elements.
void bw_sum(const Value& y, const Value& g, Value* d) { d[0] = broadcast_to(g, y.input(0).shape()); }
void bw_sum_axis(const Value& y, const Value& g, Value* d) {
  Shape keep = y.input(0).shape();
  keep.dim[y.node().attrs.i[0]] = 1;
  d[0] = broadcast_to(reshape(g, keep), y.input(0).shape());
}
// d/dx_k log sum_j e^{x_j} = e^{x_k - y}: the softmax, built from ordinary ops.
void bw_logsumexp(const Value& y, const Value& g, Value* d) {
  const Shape& s = y.input(0).shape();
  Shape keep = s;
  keep.dim[y.node().attrs.i[0]] = 1;
  d[0] = broadcast_to(reshape(g, keep), s) * exp(y.input(0) - broadcast_to(reshape(y, keep), s));
}
void bw_broadcast_to(const Value& y, const Value& g, Value* d) { d[0] = sum_to(g, y.input(0).shape()); }

// batch_topk_mask: keys [B, N], 1 <= k <= B -> [B, N] of ones where a key ranks among its
// column's k largest, zeros elsewhere. A step function of the keys: no gradient (d[0] left
// invalid), as for stop_gradient; the keys only choose.
Shape batch_topk_rule(const Node& n, const Shape* in) {
  if (in[0].rank != 2) shape_error(n, in, "keys must be a [batch, units] matrix");
  const int64_t k = n.attrs.i[0];
  if (k < 1 || k > in[0][0]) shape_error(n, in, fmt::format("k = {} must be between 1 and the batch, {}", k, in[0][0]));
  return in[0];
}
void bw_chooses(const Value&, const Value&, Value*) {}

}  // namespace

void register_reduce_ops(OpInfo* t) {
  set_op(t, OpCode::sum, OpKind::reduce, 1, true, sum_all_rule, bw_sum);
  set_op(t, OpCode::sum_axis, OpKind::reduce, 1, true, sum_axis_rule, bw_sum_axis);
  set_op(t, OpCode::logsumexp, OpKind::reduce, 1, true, sum_axis_rule, bw_logsumexp);
  set_op(t, OpCode::broadcast_to, OpKind::shape, 1, true, broadcast_to_rule, bw_broadcast_to);
  set_op(t, OpCode::batch_topk_mask, OpKind::reduce, 1, false, batch_topk_rule, bw_chooses);
}

Value batch_topk(Value x, int64_t k) { return batch_topk_at(x, x, k); }

Value batch_topk_mask(Value keys, int64_t k) {
  Attrs a;
  a.i[0] = k;
  return keys.graph->add(OpCode::batch_topk_mask, {keys}, a);
}

// The values where the mask is one: relu_grad(mask, values) keeps values where mask > 0. Its
// gradient in values is the same selection of g, relu_grad(mask, g); where g is a product,
// relu_grad makes that a masked product (ops/elementwise.cpp).
Value batch_topk_at(Value keys, Value values, int64_t k) {
  if (keys.shape() != values.shape())
    throw Error(fmt::format("batch_topk_at: keys {} and values {} must be the same [batch, units] matrix",
                            keys.shape().str(), values.shape().str()));
  return relu_grad(batch_topk_mask(keys, k), values);
}

Value sum(Value x) { return x.graph->add(OpCode::sum, {x}); }

Value sum(Value x, int axis) {
  if (axis < 0) axis += x.shape().rank;
  Attrs a;
  a.i[0] = axis;
  return x.graph->add(OpCode::sum_axis, {x}, a);
}

Value logsumexp(Value x, int axis) {
  if (axis < 0) axis += x.shape().rank;
  Attrs a;
  a.i[0] = axis;
  return x.graph->add(OpCode::logsumexp, {x}, a);
}

Value log_softmax(Value x, int axis) {
  if (axis < 0) axis += x.shape().rank;
  Shape keep = x.shape();
  if (axis >= 0 && axis < keep.rank) keep.dim[axis] = 1;
  return x - broadcast_to(reshape(logsumexp(x, axis), keep), x.shape());
}

Value softmax(Value x, int axis) { return exp(log_softmax(x, axis)); }

Value mean(Value x) { return sum(x) * float(1.0 / double(x.shape().numel())); }

Value mean(Value x, int axis) {
  if (axis < 0) axis += x.shape().rank;
  if (axis < 0 || axis >= x.shape().rank)
    throw Error(fmt::format("mean: axis {} is out of range for {}", axis, x.shape().str()));
  return sum(x, axis) * float(1.0 / double(x.shape().dim[axis]));
}

Value broadcast_to(Value x, Shape shape) {
  if (x.shape() == shape) return x;
  Attrs a;
  a.shape = shape;
  return x.graph->add(OpCode::broadcast_to, {x}, a);
}

Value sum_to(Value x, Shape target) {
  const Shape& s = x.shape();
  if (s == target) return x;
  if (target.numel() == 1) return reshape(sum(x), target);
  Shape check;
  if (!broadcast_shape(target, s, &check) || check != s)
    throw Error(fmt::format("sum_to: {} does not broadcast to {}", target.str(), s.str()));
  // Sum, from the last axis down, every axis that the target stretched (dimension 1 or absent).
  Value r = x;
  for (int axis = s.rank - 1; axis >= 0; --axis) {
    int ta = target.rank - s.rank + axis;
    int64_t td = ta >= 0 ? target.dim[ta] : 1;
    if (td == 1 && s.dim[axis] != 1) r = sum(r, axis);
  }
  return r.shape() == target ? r : reshape(r, target);
}

}  // namespace ag
