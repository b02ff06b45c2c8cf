// What an op file needs to register its ops: the name from the op list and one setter.
#pragma once
#include "ops/op.h"

namespace ag {

const char* op_name_literal(OpCode op);  // the X-macro name, e.g. "sigmoid_grad"

inline void set_op(OpInfo* table, OpCode op, OpKind kind, int arity, bool smooth, ShapeFn shape, BackwardFn backward) {
  table[int(op)] = OpInfo{op_name_literal(op), kind, arity, smooth, shape, backward};
}

}  // namespace ag
