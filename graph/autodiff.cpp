// The reverse sweep: visit nodes from the loss down, ask each op's backward rule for its inputs'
// gradients, and add up the contributions of a value used more than once.
#include "graph/autodiff.h"

#include <fmt/format.h>

#include "ops/ops.h"

namespace ag {

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

  std::vector<Value> adj;
  adj.resize(size_t(n));
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
    if (!needs[size_t(id)] || !adj[size_t(id)].valid()) continue;
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
      Value& a = adj[size_t(src)];
      a = a.valid() ? a + d[k] : d[k];
    }
  }

  std::vector<Value> out;
  for (const Value& w : wrt) {
    bool has = w.id < n && adj[size_t(w.id)].valid();
    out.push_back(has ? adj[size_t(w.id)] : zeros_like(w));
  }
  return out;
}

}  // namespace ag
