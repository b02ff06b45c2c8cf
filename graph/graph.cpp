// Graph construction, shape checking at build time, Value access and Graphviz export.
#include "graph/graph.h"

#include <fmt/format.h>

#include "ops/registry.h"

namespace ag {

Shape::Shape(std::initializer_list<int64_t> dims) {
  if (dims.size() > size_t(max_rank)) throw Error(fmt::format("Shape: rank {} is above the maximum of {}", dims.size(), max_rank));
  for (int64_t d : dims) {
    if (d < 0) throw Error(fmt::format("Shape: negative dimension {}", d));
    dim[rank++] = d;
  }
}

Shape Shape::of(const int64_t* dims, int r) {
  if (r > max_rank) throw Error(fmt::format("Shape: rank {} is above the maximum of {}", r, max_rank));
  Shape s;
  for (int i = 0; i < r; ++i) s.dim[s.rank++] = dims[i];
  return s;
}

bool Shape::operator==(const Shape& o) const {
  if (rank != o.rank) return false;
  for (int i = 0; i < rank; ++i)
    if (dim[i] != o.dim[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dim[i]);
  return s + "]";
}

HostTensor::HostTensor(Shape shape, DType dtype)
    : bytes_(size_t(shape.numel()) * dtype_size(dtype)), shape_(shape), dtype_(dtype) {}

double HostTensor::at(int64_t i) const {
  return dtype_ == DType::f32 ? double(ptr<float>()[i]) : ptr<double>()[i];
}
void HostTensor::set(int64_t i, double v) {
  if (dtype_ == DType::f32) ptr<float>()[i] = float(v);
  else ptr<double>()[i] = v;
}

const Node& Value::node() const {
  if (!valid()) throw Error("use of an empty Value (no graph)");
  return graph->node(id);
}

Value Value::input(int k) const { return Value{graph, node().in.at(size_t(k))}; }

void shape_error(const Node& node, const Shape* inputs, const std::string& what) {
  std::string shapes;
  for (size_t i = 0; i < node.in.size(); ++i) shapes += (i ? " and " : "") + inputs[i].str();
  throw Error(fmt::format("{}: {} (input shapes {})", op_name(node.op), what, shapes.empty() ? "none" : shapes));
}

Value Graph::add(OpCode op, std::vector<Value> inputs, Attrs attrs, DType dtype) {
  const OpInfo& info = op_info(op);
  if (info.arity >= 0 && int(inputs.size()) != info.arity)
    throw Error(fmt::format("{}: takes {} inputs, got {}", info.name, info.arity, inputs.size()));
  Node n;
  n.op = op;
  n.attrs = attrs;
  n.dtype = dtype;
  std::vector<Shape> shapes(inputs.size());
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Value& v = inputs[k];
    if (v.graph != this) throw Error(fmt::format("{}: input {} belongs to another graph (or is empty)", info.name, k));
    const Node& src = node(v.id);
    if (k == 0) n.dtype = src.dtype;
    else if (src.dtype != n.dtype)
      throw Error(fmt::format("{}: input {} is {} but input 0 is {}", info.name, k, to_string(src.dtype), to_string(n.dtype)));
    n.in.push_back(v.id);
    shapes[k] = src.shape;
  }
  n.shape = info.shape(n, shapes.data());
  nodes_.push_back(std::move(n));
  return Value{this, int(nodes_.size()) - 1};
}

Value Graph::add_leaf(Node n) {
  nodes_.push_back(std::move(n));
  return Value{this, int(nodes_.size()) - 1};
}

std::string Graph::dot() const {
  std::string s = "digraph aegraph {\n  node [shape=box, fontname=monospace];\n";
  for (int id = 0; id < size(); ++id) {
    const Node& n = node(id);
    s += fmt::format("  n{} [label=\"{} {}{}\"];\n", id, op_name(n.op), n.shape.str(), n.name.empty() ? "" : " " + n.name);
    for (int src : n.in) s += fmt::format("  n{} -> n{};\n", src, id);
  }
  return s + "}\n";
}

const OpInfo& op_info(OpCode op) {
  static const std::vector<OpInfo> table = [] {
    std::vector<OpInfo> t(op_count);
    register_elementwise_ops(t.data());
    register_reduce_ops(t.data());
    register_matmul_ops(t.data());
    register_shape_ops(t.data());
    register_loss_ops(t.data());
    register_random_ops(t.data());
    register_image_ops(t.data());
    register_collective_ops(t.data());
    register_norm_ops(t.data());
    return t;
  }();
  if (int(op) >= op_count) throw Error("op_info: op code out of range");
  return table[size_t(op)];
}

}  // namespace ag

namespace ag {
const char* op_name_literal(OpCode op) {
  static const char* const names[] = {
#define AG_OP_NAME2(name, F) #name,
#define AG_OP_NAME1(name) #name,
      AG_UNARY_OPS(AG_OP_NAME2) AG_BINARY_OPS(AG_OP_NAME2) AG_LOSS_OPS(AG_OP_NAME2)
      AG_RANDOM_OPS(AG_OP_NAME2) AG_OTHER_OPS(AG_OP_NAME1)
#undef AG_OP_NAME2
#undef AG_OP_NAME1
  };
  return names[int(op)];
}
}  // namespace ag
