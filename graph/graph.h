// The graph: append-only nodes addressed by id, and Value, the handle model code holds.
// Building a node runs its op's shape rule at once, so a shape error names the op and the
// shapes where the model code made the mistake, not later inside a kernel.
#pragma once
#include <deque>
#include <string>
#include <vector>

#include "graph/tensor.h"
#include "ops/op.h"

namespace ag {

constexpr int max_fused_ops = 16;  // ops one fusion group may hold (plan) and a backend must run

struct Node {
  OpCode op = OpCode::input;
  DType dtype = DType::f32;
  Shape shape;
  std::vector<int> in;          // input node ids, all smaller than this node's id
  Attrs attrs;
  std::string name;             // inputs and externals: how errors and checkpoints call them
  Tensor external;              // external leaves: the persistent buffer (parameter, state, ...)
  std::vector<double> values;   // constants: one value (a fill) or numel values
};

class Graph;

struct Value {
  Graph* graph = nullptr;
  int id = -1;

  bool valid() const { return graph != nullptr && id >= 0; }
  const Node& node() const;
  const Shape& shape() const { return node().shape; }
  DType dtype() const { return node().dtype; }
  OpCode op() const { return node().op; }
  Value input(int k) const;  // the k-th input of this node, as a Value
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Appends a node after checking arity, dtypes and (through the op's rule) shapes.
  Value add(OpCode op, std::vector<Value> inputs, Attrs attrs = {}, DType dtype = DType::f32);
  Value add_leaf(Node node);

  const Node& node(int id) const { return nodes_.at(size_t(id)); }
  int size() const { return int(nodes_.size()); }
  Value value(int id) { return Value{this, id}; }

  std::string dot() const;  // Graphviz export, for looking at a model

 private:
  std::deque<Node> nodes_;  // deque: references stay valid while gradients append nodes
};

// "op: what is wrong" with the shapes of its inputs: [a] and [b].
[[noreturn]] void shape_error(const Node& node, const Shape* inputs, const std::string& what);

}  // namespace ag
