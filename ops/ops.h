// The public op API: what model code calls. Each function appends one node (or a few) to the
// graph of its inputs. Broadcasting: a binary op accepts equal shapes, a scalar on either side,
// a row [N] or [1, N] against [M, N], and a column [M, 1] against [M, N].
#pragma once
#include <string>
#include <vector>

#include "graph/graph.h"

namespace ag {

// ---- leaves ----
Value input(Graph& g, Shape shape, std::string name, DType dtype = DType::f32);  // fed each run
Value constant(Graph& g, double value, Shape shape = {}, DType dtype = DType::f32);
Value constant(Graph& g, const HostTensor& values);
Value external(Graph& g, const Tensor& buffer, std::string name);  // persistent memory (parameters, state)
Value zeros_like(Value x);
Value ones_like(Value x);

// ---- elementwise ----
Value neg(Value x);
Value exp(Value x);
Value log(Value x);
Value sqrt(Value x);
Value square(Value x);
Value abs(Value x);
Value sign(Value x);
Value relu(Value x);
Value sigmoid(Value x);
Value tanh(Value x);
Value softplus(Value x);
Value clamp(Value x, float lo, float hi);
Value affine(Value x, float a, float b);  // a x + b
Value add(Value a, Value b);
Value sub(Value a, Value b);
Value mul(Value a, Value b);
Value div(Value a, Value b);
Value relu_grad(Value x, Value g);      // g [x > 0]
Value sigmoid_grad(Value y, Value g);   // g y (1 - y)
Value tanh_grad(Value y, Value g);      // g (1 - y^2)
Value clamp_grad(Value x, Value g, float lo, float hi);  // g [lo <= x <= hi]
Value activation(Value x, const std::string& name);      // "relu", "sigmoid", "tanh", "softplus", "linear"

Value operator+(Value a, Value b);
Value operator-(Value a, Value b);
Value operator*(Value a, Value b);
Value operator/(Value a, Value b);
Value operator-(Value a);
Value operator+(Value a, float s);
Value operator+(float s, Value a);
Value operator-(Value a, float s);
Value operator-(float s, Value a);
Value operator*(Value a, float s);
Value operator*(float s, Value a);
Value operator/(Value a, float s);
Value operator/(float s, Value a);

// ---- matrix products ----
// op(a) op(b), op = transpose where the flag is set; bias (optional) is a row added to every row.
Value matmul(Value a, Value b, bool transpose_a = false, bool transpose_b = false, Value bias = {});
// op(a) op(b) where mask > 0, zero elsewhere (mask: the product's shape; no gradient to it). Only
// the kept entries are computed where the mask is mostly zero (a batch top-k's selection).
Value masked_matmul(Value a, Value b, Value mask, bool transpose_a = false, bool transpose_b = false);
Value linear(Value x, Value weight, Value bias = {});  // x W^T + b, W is [out, in] as in PyTorch

// ---- images: NCHW tensors [N, C, H, W], as in PyTorch (geometry: ops/image.h) ----
// conv2d: w [F, C, kh, kw], b [F]; output [N, F, (H + 2 padding - kh) / stride + 1, ...].
Value conv2d(Value x, Value w, Value b = {}, int64_t stride = 1, int64_t padding = 0);
// PyTorch's ConvTranspose2d: w [C_in, C_out, kh, kw], b [C_out];
// output [N, C_out, (H - 1) stride - 2 padding + kh + output_padding, ...].
Value conv_transpose2d(Value x, Value w, Value b = {}, int64_t stride = 1, int64_t padding = 0,
                       int64_t output_padding = 0);
// The filters' gradient of conv2d(x, ., stride, padding) given the output's gradient y: [F, C, kh, kw].
Value conv2d_filter_grad(Value x, Value y, int64_t kh, int64_t kw, int64_t stride, int64_t padding);
// Max pooling (padding counts as -inf, padding <= kernel / 2); the gradient goes to the arg-max,
// the first in the window on ties.
Value max_pool2d(Value x, int64_t kernel, int64_t stride, int64_t padding = 0);
// In each window, the value at the largest key's position (max_pool2d(x) = max_pool2d_at(x, x)).
Value max_pool2d_at(Value keys, Value values, int64_t kernel, int64_t stride, int64_t padding);
// The adjoint of max_pool2d_at: each window's g added at its largest key's position, keys' shape.
Value max_unpool2d(Value keys, Value g, int64_t kernel, int64_t stride, int64_t padding);
Value upsample_nearest2d(Value x, int64_t scale);  // each pixel repeated scale x scale times
Value sum_pool2d(Value x, int64_t scale);          // the sum of each scale x scale block

// ---- reductions and shapes ----
Value sum(Value x);                 // scalar
Value sum(Value x, int axis);       // that axis removed
Value mean(Value x);
Value mean(Value x, int axis);
Value logsumexp(Value x, int axis);  // log sum_k e^{x_k} along axis, computed stably (axis removed)
Value log_softmax(Value x, int axis);  // x - logsumexp(x, axis), broadcast back
Value softmax(Value x, int axis);      // exp(log_softmax(x, axis)): stable for any logits, sums to 1
Value broadcast_to(Value x, Shape shape);
Value sum_to(Value x, Shape shape);  // the reverse of broadcasting: sums the broadcast axes
Value reshape(Value x, Shape shape);
Value stop_gradient(Value x);  // x's values; no gradient flows through it (PyTorch's detach); free, an alias
// Output axis k is x's axis axes[k] (numpy's transpose, PyTorch's permute); a negative axis counts
// from the end. A new memory order is one copy; where only axes of length 1 move, a free reshape.
Value permute(Value x, const std::vector<int>& axes);
Value transpose(Value x, int axis0, int axis1);  // those two axes swapped
Value slice(Value x, int axis, int64_t start, int64_t length);
Value pad(Value x, int axis, int64_t start, int64_t total);  // zeros around x along axis
Value concat(const std::vector<Value>& parts, int axis);  // any number of parts, one node
// Per column of x [B, N], the k largest values over the batch kept, the rest zero (ties: the lower
// row; a NaN ranks above every number). The gradient flows to the kept elements only.
Value batch_topk(Value x, int64_t k);
// Ones where keys [B, N] rank among their column's k largest over the batch, else zeros; no
// gradient (the keys only choose).
Value batch_topk_mask(Value keys, int64_t k);
// values [B, N] where keys [B, N] rank among their column's k largest, else zero
// (batch_topk(x, k) = batch_topk_at(x, x, k)); its gradient in values is the same selection.
Value batch_topk_at(Value keys, Value values, int64_t k);

// ---- batch normalisation's training pass (ops/norm.cpp) ----
// Per feature (column) of x [B, F], B >= 2: (x - mean) / sqrt(var + eps) * weight + bias, the
// batch's mean and biased variance. Its gradients are the two ops below and sum(g, 0).
Value batch_norm(Value x, Value weight, Value bias, float eps);
Value batch_norm_dw(Value x, Value g, float eps);             // sum over the batch of g * xhat
Value batch_norm_dx(Value x, Value weight, Value g, float eps);  // the gradient in x
Value batch_moments(Value x);  // [2, F]: the batch's mean and biased variance per column

// ---- losses (scalars) ----
Value bce(Value p, Value target);               // mean over elements, p a probability
Value bce_with_logits(Value z, Value target);   // mean over elements, z a logit
Value mse(Value a, Value b);                    // mean over elements of (a - b)^2
Value kl_normal(Value mu, Value logvar);        // KL(N(mu, e^logvar) || N(0, I)) summed per row, mean over rows

// ---- randomness: Philox streams keyed by (seed, node), counted by the step tensor's value ----
Value uniform(Value step, Shape shape, uint64_t seed, float lo = 0, float hi = 1);
Value normal(Value step, Shape shape, uint64_t seed, float mean = 0, float stddev = 1);
Value bernoulli(Value step, Shape shape, uint64_t seed, float p);  // 1 with probability p

// ---- collectives: sums over the ranks of a data-parallel run (backends/communicator.h) ----
// The parts (1 to 8, one dtype) packed into one flat vector [total numel] and summed over every
// rank; with one rank, the packed parts.
Value allreduce_sum(const std::vector<Value>& parts);
// The same sum, unpacked: one value per part, in its shape.
std::vector<Value> allreduce_sum_each(const std::vector<Value>& parts);

// ---- persistent updates ----
// Writes value into target (an external leaf) when the plan runs; returns the updated target.
Value assign(Value target, Value value);

}  // namespace ag
