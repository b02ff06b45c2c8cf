// The reverse sweep: visit nodes from the loss down, ask each op's backward rule for its inputs'
// gradients, and add up the contributions of a value used more than once.
#include "graph/autodiff.h"

#include <algorithm>

#include <fmt/format.h>

#include "ops/ops.h"

namespace ag {

namespace {

// The single product concat(A)^T concat(B) where every part is a product A_k^T B_k, else invalid.
Value stacked_product(const std::vector<Value>& parts) {
  std::vector<Value> as, bs;
  for (const Value& v : parts) {
    const Node& n = v.node();
    if (n.op != OpCode::matmul || n.in.size() != 2 || n.attrs.i[0] != 1 || n.attrs.i[1] != 0) return {};
    as.push_back(v.input(0));
    bs.push_back(v.input(1));
  }
  return matmul(concat(as, 0), concat(bs, 0), true, false);
}

// The concat of what was padded where the parts are pads that tile one axis, else invalid.
Value tiled_concat(const std::vector<Value>& parts) {
  const Node& first = parts[0].node();
  for (const Value& v : parts) {
    const Node& n = v.node();
    if (n.op != OpCode::pad || n.attrs.i[0] != first.attrs.i[0] || n.attrs.i[2] != first.attrs.i[2]) return {};
  }
  const int axis = int(first.attrs.i[0]);
  std::vector<Value> order = parts;
  std::sort(order.begin(), order.end(), [](const Value& a, const Value& b) { return a.node().attrs.i[1] < b.node().attrs.i[1]; });
  int64_t at = 0;
  std::vector<Value> inner;
  for (const Value& v : order) {
    if (v.node().attrs.i[1] != at) return {};
    inner.push_back(v.input(0));
    at += inner.back().shape().dim[axis];
  }
  return at == first.attrs.i[2] ? concat(inner, axis) : Value{};
}

// The gradient of a value from its contributions, in the order they came. Where they are the
// pads of slices that tile one axis of the value (the LSTM's four gates, a concat's parts read
// back), their sum is the concat of what was padded: the same values without a pass over zeros
// per slice and the adds between them.
//
// Where they are all products A_k^T B_k (the weight gradient of every use of one weight: an RNN's
// recurrent weight at each step, a tied weight in encoder and decoder), their sum is one product
// over the uses stacked, concat(A)^T concat(B): one long product instead of a short one per use
// and the adds between them.
Value total(const std::vector<Value>& parts) {
  if (parts.size() >= 2) {
    if (Value v = stacked_product(parts); v.valid()) return v;
    if (Value v = tiled_concat(parts); v.valid()) return v;
  }
  Value sum = parts[0];
  for (size_t k = 1; k < parts.size(); ++k) sum = sum + parts[k];
  return sum;
}

}  // namespace

std::vector<Value> grad(Value loss, const std::vector<Value>& wrt, Value seed) {
  if (!loss.valid()) throw Error("grad: the loss is an empty Value");
  Graph& g = *loss.graph;
  const int n = loss.id + 1;

  // Only nodes on a path to some wrt value need a gradient.
  std::vector<char> needs(size_t(n), 0);
  for (const Value& w : wrt) {
    if (w.graph != &g) throw Error("grad: a wrt value belongs to another graph");
    if (w.id < n) needs[size_t(w.id)] = 1;
  }
  for (int id = 0; id < n; ++id)
    for (int src : g.node(id).in)
      if (needs[size_t(src)]) needs[size_t(id)] = 1;

  // Each value's gradient contributions, added up (total()) once the sweep reaches it: every
  // consumer of a node comes after it in the graph.
  std::vector<std::vector<Value>> parts(static_cast<size_t>(n));
  std::vector<Value> adj(static_cast<size_t>(n));
  auto adjoint = [&](int id) -> Value& {
    if (!adj[size_t(id)].valid() && !parts[size_t(id)].empty()) adj[size_t(id)] = total(parts[size_t(id)]);
    return adj[size_t(id)];
  };
  if (seed.valid()) {
    if (seed.shape() != loss.shape())
      throw Error(fmt::format("grad: seed shape {} differs from the output's {}", seed.shape().str(), loss.shape().str()));
    adj[size_t(loss.id)] = seed;
  } else {
    if (loss.shape().numel() != 1)
      throw Error(fmt::format("grad: the loss must be a scalar, not {} (or pass a seed)", loss.shape().str()));
    adj[size_t(loss.id)] = ones_like(loss);
  }

  for (int id = loss.id; id >= 0; --id) {
    if (!needs[size_t(id)] || !adjoint(id).valid()) continue;
    const Node& node = g.node(id);
    if (node.in.empty()) continue;
    std::vector<Value> d(node.in.size());
    op_info(node.op).backward(Value{&g, id}, adj[size_t(id)], d.data());
    for (size_t k = 0; k < node.in.size(); ++k) {
      int src = node.in[k];
      if (!d[k].valid() || !needs[size_t(src)]) continue;
      if (d[k].shape() != g.node(src).shape)
        throw Error(fmt::format("grad: backward of {} gave {} for an input of shape {}", op_name(node.op),
                                d[k].shape().str(), g.node(src).shape.str()));
      parts[size_t(src)].push_back(d[k]);
    }
  }

  std::vector<Value> out;
  for (const Value& w : wrt) {
    bool has = w.id < n && adjoint(w.id).valid();
    out.push_back(has ? adj[size_t(w.id)] : zeros_like(w));
  }
  return out;
}

}  // namespace ag
