// The op list. Every op is named once here, in the X-macro of its kind; the kind says which
// generic loop runs it (map, zip, zip-reduce, RNG fill, GEMM, ...). Elementwise ops name the
// scalar functor (ops/functors.h) that both backends instantiate. Each op's shape rule and
// backward rule sit side by side in one file under ops/ and are registered in op_info().
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "graph/tensor.h"

// Unary elementwise: y = F(x).
#define AG_UNARY_OPS(X) \
  X(neg, Neg)           \
  X(exp, Exp)           \
  X(log, Log)           \
  X(sqrt, Sqrt)         \
  X(square, Square)     \
  X(abs, Abs)           \
  X(sign, Sign)         \
  X(relu, Relu)         \
  X(sigmoid, Sigmoid)   \
  X(tanh, Tanh)         \
  X(softplus, Softplus) \
  X(clamp, Clamp)       \
  X(affine, Affine)

// Binary elementwise with broadcasting of scalars, rows and columns: z = F(a, b).
// The *_grad ops are the dedicated backward ops; they have backward rules of their own.
#define AG_BINARY_OPS(X)        \
  X(add, Add)                   \
  X(sub, Sub)                   \
  X(mul, Mul)                   \
  X(div, Div)                   \
  X(relu_grad, ReluGrad)        \
  X(sigmoid_grad, SigmoidGrad)  \
  X(tanh_grad, TanhGrad)        \
  X(clamp_grad, ClampGrad)

// Losses: a scalar, scale * sum_i F(a_i, b_i), reduced deterministically.
#define AG_LOSS_OPS(X)                 \
  X(bce, BceTerm)                      \
  X(bce_with_logits, BceLogitsTerm)    \
  X(mse, SquaredErrorTerm)             \
  X(kl_normal, KlNormalTerm)

// Counter-based random fills (Philox4x32-10 keyed by seed and node, counted by step and index).
#define AG_RANDOM_OPS(X)   \
  X(uniform, UniformDraw)  \
  X(normal, NormalDraw)    \
  X(bernoulli, BernoulliDraw)

// Everything else, each with its own kernel.
#define AG_OTHER_OPS(X) \
  X(input)              \
  X(constant)           \
  X(external)           \
  X(matmul)             \
  X(masked_matmul)      \
  X(sum)                \
  X(sum_axis)           \
  X(logsumexp)          \
  X(batch_topk_mask)    \
  X(batch_norm)         \
  X(batch_norm_dw)      \
  X(batch_norm_dx)      \
  X(batch_moments)      \
  X(broadcast_to)       \
  X(permute)            \
  X(reshape)            \
  X(stop_gradient)      \
  X(slice)              \
  X(pad)                \
  X(concat)             \
  X(assign)             \
  X(conv2d)             \
  X(conv_transpose2d)   \
  X(conv2d_filter_grad) \
  X(max_pool2d_at)      \
  X(max_unpool2d)       \
  X(upsample_nearest2d) \
  X(sum_pool2d)         \
  X(allreduce_sum)

namespace ag {

enum class OpCode : uint16_t {
#define AG_OP_ENUM2(name, F) name,
#define AG_OP_ENUM1(name) name,
  AG_UNARY_OPS(AG_OP_ENUM2) AG_BINARY_OPS(AG_OP_ENUM2) AG_LOSS_OPS(AG_OP_ENUM2)
  AG_RANDOM_OPS(AG_OP_ENUM2) AG_OTHER_OPS(AG_OP_ENUM1)
#undef AG_OP_ENUM2
#undef AG_OP_ENUM1
  count
};
constexpr int op_count = int(OpCode::count);

// collective: a sum over the ranks of a data-parallel run (ops/collective.cpp); every rank runs
// its collectives in the same order.
enum class OpKind : uint8_t { leaf, unary, binary, loss, random, matmul, reduce, shape, assign, image, collective };

// Op parameters: a few floats and integers whose meaning each op documents where it is built.
struct Attrs {
  float f[4] = {0, 0, 0, 0};
  int64_t i[4] = {0, 0, 0, 0};
  Shape shape;  // a target shape: reshape, broadcast_to, random fills
};

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Node;
struct Value;
using ShapeFn = Shape (*)(const Node& node, const Shape* inputs);
// Appends the gradient of each input to `grads` (left invalid where there is none),
// given the node's output `out` and the gradient `g` flowing into it.
using BackwardFn = void (*)(const Value& out, const Value& g, Value* grads);

struct OpInfo {
  const char* name = nullptr;
  OpKind kind = OpKind::leaf;
  int arity = 0;         // -1: variable
  bool smooth = false;   // twice differentiable: the second-order check covers it
  ShapeFn shape = nullptr;
  BackwardFn backward = nullptr;
};

const OpInfo& op_info(OpCode op);
// Ops that are free at run time: the plan makes the output an alias of the input (no kernel).
inline bool is_alias(OpCode op) { return op == OpCode::reshape || op == OpCode::stop_gradient; }
inline const char* op_name(OpCode op) { return op_info(op).name; }

// Registration, one function per op file (called once, in order, by op_info()).
void register_elementwise_ops(OpInfo* table);
void register_reduce_ops(OpInfo* table);
void register_matmul_ops(OpInfo* table);
void register_shape_ops(OpInfo* table);
void register_loss_ops(OpInfo* table);
void register_random_ops(OpInfo* table);
void register_image_ops(OpInfo* table);
void register_collective_ops(OpInfo* table);
void register_norm_ops(OpInfo* table);

}  // namespace ag
