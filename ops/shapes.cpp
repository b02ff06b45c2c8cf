// Leaves (input, constant, external), shape ops (reshape, stop_gradient, permute, slice, pad,
// concat) and assign. reshape and stop_gradient are free at run time: the plan makes the output
// an alias of the input.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ops/ops.h"
#include "ops/registry.h"

namespace ag {

namespace {

Shape leaf_rule(const Node& n, const Shape*) { return n.shape; }
void bw_leaf(const Value&, const Value&, Value*) {}

Shape reshape_rule(const Node& n, const Shape* in) {
  if (n.attrs.shape.numel() != in[0].numel())
    shape_error(n, in, fmt::format("cannot reshape to {} ({} elements against {})", n.attrs.shape.str(),
                                   n.attrs.shape.numel(), in[0].numel()));
  return n.attrs.shape;
}
void bw_reshape(const Value& y, const Value& g, Value* d) { d[0] = reshape(g, y.input(0).shape()); }

// stop_gradient: the input's values, and no gradient to it (the d[0] left invalid).
Shape same_rule(const Node&, const Shape* in) { return in[0]; }

// permute: attrs i = perm, output axis k is input axis perm[k].
Shape permute_rule(const Node& n, const Shape* in) {
  bool seen[Shape::max_rank] = {};
  Shape s = in[0];
  for (int k = 0; k < in[0].rank; ++k) {
    const int64_t a = n.attrs.i[k];
    if (a < 0 || a >= in[0].rank || seen[a])
      shape_error(n, in, fmt::format("({}) is not a permutation of the {} axes",
                                     fmt::join(n.attrs.i, n.attrs.i + in[0].rank, ", "), in[0].rank));
    seen[a] = true;
    s.dim[k] = in[0].dim[a];
  }
  return s;
}
void bw_permute(const Value& y, const Value& g, Value* d) {
  const int64_t* perm = y.node().attrs.i;
  std::vector<int> inverse(size_t(y.shape().rank), 0);
  for (int k = 0; k < y.shape().rank; ++k) inverse[size_t(perm[k])] = k;
  d[0] = permute(g, inverse);
}

int check_axis(const Node& n, const Shape* in, int64_t axis) {
  if (axis < 0 || axis >= in[0].rank) shape_error(n, in, fmt::format("axis {} is out of range", axis));
  return int(axis);
}

// slice: attrs i = {axis, start, length}
Shape slice_rule(const Node& n, const Shape* in) {
  int axis = check_axis(n, in, n.attrs.i[0]);
  int64_t start = n.attrs.i[1], len = n.attrs.i[2];
  if (start < 0 || len < 0 || start + len > in[0].dim[axis])
    shape_error(n, in, fmt::format("[{}, {}) is outside axis {} of length {}", start, start + len, axis, in[0].dim[axis]));
  Shape s = in[0];
  s.dim[axis] = len;
  return s;
}
void bw_slice(const Value& y, const Value& g, Value* d) {
  const Attrs& a = y.node().attrs;
  d[0] = pad(g, int(a.i[0]), a.i[1], y.input(0).shape().dim[a.i[0]]);
}

// pad: attrs i = {axis, start, total}; x lands at [start, start + len) of a zero tensor.
Shape pad_rule(const Node& n, const Shape* in) {
  int axis = check_axis(n, in, n.attrs.i[0]);
  int64_t start = n.attrs.i[1], total = n.attrs.i[2];
  if (start < 0 || start + in[0].dim[axis] > total)
    shape_error(n, in, fmt::format("cannot place length {} at {} in {}", in[0].dim[axis], start, total));
  Shape s = in[0];
  s.dim[axis] = total;
  return s;
}
void bw_pad(const Value& y, const Value& g, Value* d) {
  const Attrs& a = y.node().attrs;
  d[0] = slice(g, int(a.i[0]), a.i[1], y.input(0).shape().dim[a.i[0]]);
}

// concat: attrs i[0] = axis; all other axes equal.
Shape concat_rule(const Node& n, const Shape* in) {
  if (n.in.empty()) shape_error(n, in, "needs at least one input");
  int axis = check_axis(n, in, n.attrs.i[0]);
  Shape s = in[0];
  for (size_t k = 1; k < n.in.size(); ++k) {
    bool ok = in[k].rank == s.rank;
    for (int a = 0; ok && a < s.rank; ++a) ok = a == axis || in[k].dim[a] == s.dim[a];
    if (!ok) shape_error(n, in, fmt::format("input {} differs outside axis {}", k, axis));
    s.dim[axis] += in[k].dim[axis];
  }
  return s;
}
void bw_concat(const Value& y, const Value& g, Value* d) {
  int axis = int(y.node().attrs.i[0]);
  int64_t at = 0;
  for (size_t k = 0; k < y.node().in.size(); ++k) {
    int64_t len = y.input(int(k)).shape().dim[axis];
    d[k] = slice(g, axis, at, len);
    at += len;
  }
}

// The updated target equals the value, so a gradient through it flows to the value.
void bw_assign(const Value&, const Value& g, Value* d) { d[1] = g; }

Shape assign_rule(const Node& n, const Shape* in) {
  if (in[0] != in[1]) shape_error(n, in, "target and value shapes differ");
  return in[0];
}

}  // namespace

void register_shape_ops(OpInfo* t) {
  set_op(t, OpCode::input, OpKind::leaf, 0, true, leaf_rule, bw_leaf);
  set_op(t, OpCode::constant, OpKind::leaf, 0, true, leaf_rule, bw_leaf);
  set_op(t, OpCode::external, OpKind::leaf, 0, true, leaf_rule, bw_leaf);
  set_op(t, OpCode::reshape, OpKind::shape, 1, true, reshape_rule, bw_reshape);
  set_op(t, OpCode::stop_gradient, OpKind::shape, 1, true, same_rule, bw_leaf);
  set_op(t, OpCode::permute, OpKind::shape, 1, true, permute_rule, bw_permute);
  set_op(t, OpCode::slice, OpKind::shape, 1, true, slice_rule, bw_slice);
  set_op(t, OpCode::pad, OpKind::shape, 1, true, pad_rule, bw_pad);
  set_op(t, OpCode::concat, OpKind::shape, -1, true, concat_rule, bw_concat);
  set_op(t, OpCode::assign, OpKind::assign, 2, true, assign_rule, bw_assign);
}

Value input(Graph& g, Shape shape, std::string name, DType dtype) {
  Node n;
  n.op = OpCode::input;
  n.shape = shape;
  n.dtype = dtype;
  n.name = std::move(name);
  return g.add_leaf(std::move(n));
}

Value constant(Graph& g, double value, Shape shape, DType dtype) {
  Node n;
  n.op = OpCode::constant;
  n.shape = shape;
  n.dtype = dtype;
  n.values = {value};
  return g.add_leaf(std::move(n));
}

Value constant(Graph& g, const HostTensor& values) {
  Node n;
  n.op = OpCode::constant;
  n.shape = values.shape();
  n.dtype = values.dtype();
  n.values.resize(size_t(values.numel()));
  for (int64_t i = 0; i < values.numel(); ++i) n.values[size_t(i)] = values.at(i);
  return g.add_leaf(std::move(n));
}

Value external(Graph& g, const Tensor& buffer, std::string name) {
  if (buffer.data == nullptr && buffer.numel() > 0) throw Error(fmt::format("external '{}': buffer has no memory", name));
  Node n;
  n.op = OpCode::external;
  n.shape = buffer.shape;
  n.dtype = buffer.dtype;
  n.external = buffer;
  n.name = std::move(name);
  return g.add_leaf(std::move(n));
}

Value zeros_like(Value x) { return constant(*x.graph, 0.0, x.shape(), x.dtype()); }
Value ones_like(Value x) { return constant(*x.graph, 1.0, x.shape(), x.dtype()); }

Value reshape(Value x, Shape shape) {
  if (x.shape() == shape) return x;
  Attrs a;
  a.shape = shape;
  return x.graph->add(OpCode::reshape, {x}, a);
}

Value stop_gradient(Value x) { return x.graph->add(OpCode::stop_gradient, {x}); }

Value permute(Value x, const std::vector<int>& axes) {
  const Shape& s = x.shape();
  if (int(axes.size()) != s.rank)
    throw Error(fmt::format("permute: {} axes given for a tensor of shape {}", axes.size(), s.str()));
  Attrs a;
  Shape out = s;
  bool valid = true, seen[Shape::max_rank] = {}, moves = false;
  for (int k = 0, last = -1; k < s.rank; ++k) {
    const int ax = axes[size_t(k)] < 0 ? axes[size_t(k)] + s.rank : axes[size_t(k)];
    a.i[k] = ax;
    if (ax < 0 || ax >= s.rank || seen[ax]) {
      valid = false;
      continue;
    }
    seen[ax] = true;
    out.dim[k] = s.dim[ax];
    if (s.dim[ax] == 1) continue;
    moves |= ax < last;
    last = ax;
  }
  // Where the axes longer than 1 keep their order, so does memory: a free reshape (or x itself).
  if (valid && !moves) return reshape(x, out);
  return x.graph->add(OpCode::permute, {x}, a);  // the shape rule names an invalid permutation
}

Value transpose(Value x, int axis0, int axis1) {
  const int r = x.shape().rank;
  if (axis0 < 0) axis0 += r;
  if (axis1 < 0) axis1 += r;
  if (axis0 < 0 || axis0 >= r || axis1 < 0 || axis1 >= r)
    throw Error(
        fmt::format("transpose: axes {} and {} are outside a tensor of shape {}", axis0, axis1, x.shape().str()));
  std::vector<int> axes(size_t(r), 0);
  for (int k = 0; k < r; ++k) axes[size_t(k)] = k;
  std::swap(axes[size_t(axis0)], axes[size_t(axis1)]);
  return permute(x, axes);
}

Value slice(Value x, int axis, int64_t start, int64_t length) {
  if (axis < 0) axis += x.shape().rank;
  Attrs a;
  a.i[0] = axis;
  a.i[1] = start;
  a.i[2] = length;
  return x.graph->add(OpCode::slice, {x}, a);
}

Value pad(Value x, int axis, int64_t start, int64_t total) {
  if (axis < 0) axis += x.shape().rank;
  Attrs a;
  a.i[0] = axis;
  a.i[1] = start;
  a.i[2] = total;
  return x.graph->add(OpCode::pad, {x}, a);
}

Value concat(const std::vector<Value>& parts, int axis) {
  if (parts.empty()) throw Error("concat: needs at least one input");
  if (axis < 0) axis += parts[0].shape().rank;
  Attrs a;
  a.i[0] = axis;
  return parts[0].graph->add(OpCode::concat, parts, a);
}

Value assign(Value target, Value value) {
  if (target.op() != OpCode::external)
    throw Error(fmt::format("assign: target must be an external buffer, not the output of {}", op_name(target.op())));
  return target.graph->add(OpCode::assign, {target, value});
}

}  // namespace ag
