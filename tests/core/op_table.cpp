// Rows of the op table. Ranges keep each op away from its kinks and poles (log of positives,
// division by numbers far from zero, relu away from 0) so central differences are meaningful.
#include "op_table.h"

#include <cmath>

namespace ag::testing {

namespace {
using V = const std::vector<Value>&;
Value step_of(Graph& g) { return constant(g, 3.0, {}, DType::f64); }
}  // namespace

void fill_case_input(const InputSpec& spec, int k, double* out) {
  // A fixed low-discrepancy sequence: deterministic, spread over the whole range.
  const int64_t n = spec.shape.numel();
  for (int64_t i = 0; i < n; ++i) {
    double u = std::fmod(0.5 + 0.6180339887498949 * double(i + 1) + 0.4142135623730950 * double(k + 1), 1.0);
    out[i] = spec.lo + (spec.hi - spec.lo) * u;
  }
}

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> c;
    const Shape m{3, 4};
    const InputSpec any{m, -1, 1}, pos{m, 0.5, 2}, prob{m, 0.1, 0.9}, away{m, 0.2, 1};
    auto row = [&](std::string name, OpCode op, std::vector<InputSpec> in, std::function<Value(Graph&, V)> f) {
      c.push_back(OpCase{std::move(name), op, std::move(in), std::move(f)});
    };
    // Leaves: an input, a constant and an external buffer, each used by a simple expression.
    row("input", OpCode::input, {any}, [](Graph&, V x) { return x[0] * x[0]; });
    row("constant", OpCode::constant, {any}, [](Graph& g, V x) { return x[0] * constant(g, 1.5, {}, DType::f64); });
    row("external", OpCode::external, {any}, [](Graph& g, V x) {
      static HostTensor w = [] {
        HostTensor t(Shape{3, 4}, DType::f64);
        for (int i = 0; i < 12; ++i) t.set(i, 0.1 * i - 0.4);
        return t;
      }();
      return x[0] * external(g, w.view(), "w");
    });
    // Unary maps.
    row("neg", OpCode::neg, {any}, [](Graph&, V x) { return neg(x[0]); });
    row("exp", OpCode::exp, {any}, [](Graph&, V x) { return exp(x[0]); });
    row("log", OpCode::log, {pos}, [](Graph&, V x) { return log(x[0]); });
    row("sqrt", OpCode::sqrt, {pos}, [](Graph&, V x) { return sqrt(x[0]); });
    row("square", OpCode::square, {any}, [](Graph&, V x) { return square(x[0]); });
    row("abs", OpCode::abs, {away}, [](Graph&, V x) { return abs(x[0] - 0.6f); });
    row("sign", OpCode::sign, {away}, [](Graph&, V x) { return sign(x[0] - 0.6f) * x[0]; });
    row("relu", OpCode::relu, {away}, [](Graph&, V x) { return relu(x[0] - 0.6f); });
    row("sigmoid", OpCode::sigmoid, {any}, [](Graph&, V x) { return sigmoid(x[0] * 2.0f); });
    row("tanh", OpCode::tanh, {any}, [](Graph&, V x) { return tanh(x[0]); });
    row("softplus", OpCode::softplus, {any}, [](Graph&, V x) { return softplus(x[0] * 3.0f); });
    row("clamp", OpCode::clamp, {away}, [](Graph&, V x) { return clamp(x[0], 0.45f, 0.75f); });
    row("affine", OpCode::affine, {any}, [](Graph&, V x) { return affine(x[0], -1.5f, 0.25f); });
    // Binary zips, with every broadcast shape.
    row("add", OpCode::add, {any, any}, [](Graph&, V x) { return x[0] + x[1]; });
    row("add row", OpCode::add, {any, {{4}, -1, 1}}, [](Graph&, V x) { return x[0] + x[1]; });
    row("add column", OpCode::add, {any, {{3, 1}, -1, 1}}, [](Graph&, V x) { return x[0] + x[1]; });
    row("add scalar", OpCode::add, {{{}, -1, 1}, any}, [](Graph&, V x) { return x[0] + x[1]; });
    row("sub", OpCode::sub, {any, {{1, 4}, -1, 1}}, [](Graph&, V x) { return x[0] - x[1]; });
    row("mul", OpCode::mul, {any, any}, [](Graph&, V x) { return x[0] * x[1]; });
    row("mul column", OpCode::mul, {{{3, 1}, -1, 1}, any}, [](Graph&, V x) { return x[0] * x[1]; });
    row("div", OpCode::div, {any, pos}, [](Graph&, V x) { return x[0] / x[1]; });
    row("div row", OpCode::div, {any, {{4}, 0.5, 2}}, [](Graph&, V x) { return x[0] / x[1]; });
    row("relu_grad", OpCode::relu_grad, {away, any}, [](Graph&, V x) { return relu_grad(x[0] - 0.6f, x[1]); });
    row("sigmoid_grad", OpCode::sigmoid_grad, {prob, any}, [](Graph&, V x) { return sigmoid_grad(x[0], x[1]); });
    row("tanh_grad", OpCode::tanh_grad, {any, any}, [](Graph&, V x) { return tanh_grad(x[0], x[1]); });
    row("clamp_grad", OpCode::clamp_grad, {away, any},
        [](Graph&, V x) { return clamp_grad(x[0], x[1], 0.45f, 0.75f); });
    // Matrix products: every transpose combination, and the bias row.
    row("matmul", OpCode::matmul, {{{3, 4}}, {{4, 2}}}, [](Graph&, V x) { return matmul(x[0], x[1]); });
    row("matmul A^T", OpCode::matmul, {{{4, 3}}, {{4, 2}}}, [](Graph&, V x) { return matmul(x[0], x[1], true, false); });
    row("matmul B^T", OpCode::matmul, {{{3, 4}}, {{2, 4}}}, [](Graph&, V x) { return matmul(x[0], x[1], false, true); });
    row("matmul A^T B^T", OpCode::matmul, {{{4, 3}}, {{2, 4}}},
        [](Graph&, V x) { return matmul(x[0], x[1], true, true); });
    row("linear", OpCode::matmul, {{{3, 4}}, {{2, 4}}, {{2}}}, [](Graph&, V x) { return linear(x[0], x[1], x[2]); });
    // A masked product: the mask's signs (about half kept) choose; square, so the second order
    // sees the kept entries' curvature.
    row("masked_matmul", OpCode::masked_matmul, {{{3, 4}}, {{4, 2}}, {{3, 2}, -1, 1}},
        [](Graph&, V x) { return square(masked_matmul(x[0], x[1], x[2])); });
    row("masked_matmul A^T B^T", OpCode::masked_matmul, {{{4, 3}}, {{2, 4}}, {{3, 2}, -1, 1}},
        [](Graph&, V x) { return square(masked_matmul(x[0], x[1], x[2], true, true)); });
    // Reductions and shapes.
    row("sum", OpCode::sum, {any}, [](Graph&, V x) { return sum(x[0] * x[0]); });
    row("sum_axis 0", OpCode::sum_axis, {{{2, 3, 4}}}, [](Graph&, V x) { return sum(square(x[0]), 0); });
    row("sum_axis 1", OpCode::sum_axis, {{{2, 3, 4}}}, [](Graph&, V x) { return sum(square(x[0]), 1); });
    row("sum_axis 2", OpCode::sum_axis, {{{2, 3, 4}}}, [](Graph&, V x) { return sum(square(x[0]), 2); });
    row("logsumexp", OpCode::logsumexp, {{{2, 3, 4}, -2, 2}}, [](Graph&, V x) { return logsumexp(x[0], 1); });
    row("log_softmax", OpCode::logsumexp, {any}, [](Graph&, V x) { return log_softmax(x[0] * 3.0f, 1); });
    // Over the last axis of [B, G, K]: G groups of K categories (the categorical VAE's code).
    row("log_softmax groups", OpCode::logsumexp, {{{2, 3, 4}, -2, 2}}, [](Graph&, V x) { return log_softmax(x[0], 2); });
    row("softmax groups", OpCode::logsumexp, {{{2, 3, 4}, -2, 2}}, [](Graph&, V x) { return softmax(x[0] * 2.0f, 2); });
    row("mean", OpCode::sum, {any}, [](Graph&, V x) { return mean(square(x[0]), 1); });
    row("broadcast_to", OpCode::broadcast_to, {{{3, 1}}}, [](Graph&, V x) { return square(broadcast_to(x[0], {2, 3, 4})); });
    row("reshape", OpCode::reshape, {any}, [](Graph&, V x) { return square(reshape(x[0], {2, 6})); });
    row("permute", OpCode::permute, {{{2, 3, 4}}}, [](Graph&, V x) { return square(permute(x[0], {2, 0, 1})); });
    // A finite-difference check cannot see a detach (it differentiates the values), so the row's
    // detached path, (x - sg(x))^3, has zero first and second derivatives; test_gradcheck.cpp
    // checks that the gradient stops.
    row("stop_gradient", OpCode::stop_gradient, {any}, [](Graph&, V x) {
      Value d = x[0] - stop_gradient(x[0]);
      return exp(x[0]) + d * square(d);
    });
    row("slice", OpCode::slice, {{{3, 5}}}, [](Graph&, V x) { return square(slice(x[0], 1, 1, 3)); });
    row("pad", OpCode::pad, {any}, [](Graph&, V x) { return exp(pad(x[0], 0, 1, 5)); });
    row("concat", OpCode::concat, {any, {{3, 2}}}, [](Graph&, V x) { return square(concat({x[0], x[1]}, 1)); });
    row("assign", OpCode::assign, {any}, [](Graph& g, V x) {
      static HostTensor target(Shape{3, 4}, DType::f64);
      return assign(external(g, target.view(), "target"), square(x[0]));
    });
    // Images (NCHW): convolutions with and without bias, strides whose transpose needs an
    // output padding, overlapping and padded pooling windows.
    row("conv2d", OpCode::conv2d, {{{2, 2, 5, 5}}, {{3, 2, 3, 3}}, {{3}}},
        [](Graph&, V x) { return conv2d(x[0], x[1], x[2], 1, 1); });
    // 16 channels in and out: the CPU's Winograd F(2x2, 3x3) path, forward, transpose and filters.
    row("conv2d winograd", OpCode::conv2d, {{{1, 16, 5, 3}}, {{16, 16, 3, 3}}, {{16}}},
        [](Graph&, V x) { return conv2d(x[0], x[1], x[2], 1, 1); });
    row("conv_transpose2d winograd", OpCode::conv_transpose2d, {{{1, 16, 3, 4}}, {{16, 16, 3, 3}}},
        [](Graph&, V x) { return conv_transpose2d(x[0], x[1], {}, 1, 2); });
    // A 3x3 convolution of an upsampling by 2: built as a transposed convolution of the small
    // image with filters summed from w (ops/image.cpp), gradients through both.
    row("conv2d of an upsampling", OpCode::conv_transpose2d, {{{1, 2, 3, 2}}, {{3, 2, 3, 3}}, {{3}}},
        [](Graph&, V x) { return conv2d(upsample_nearest2d(x[0], 2), x[1], x[2], 1, 1); });
    row("conv2d stride 2", OpCode::conv2d, {{{2, 2, 6, 5}}, {{3, 2, 3, 2}}},
        [](Graph&, V x) { return conv2d(x[0], x[1], {}, 2, 1); });
    row("conv_transpose2d", OpCode::conv_transpose2d, {{{2, 3, 3, 3}}, {{3, 2, 4, 4}}, {{2}}},
        [](Graph&, V x) { return conv_transpose2d(x[0], x[1], x[2], 2, 1); });
    row("conv_transpose2d output padding", OpCode::conv_transpose2d, {{{1, 2, 3, 3}}, {{2, 2, 3, 3}}},
        [](Graph&, V x) { return conv_transpose2d(x[0], x[1], {}, 2, 1, 1); });
    row("conv2d_filter_grad", OpCode::conv2d_filter_grad, {{{2, 2, 5, 5}}, {{2, 3, 3, 3}}},
        [](Graph&, V x) { return conv2d_filter_grad(x[0], x[1], 3, 3, 2, 1); });
    row("max_pool2d", OpCode::max_pool2d_at, {{{2, 2, 5, 5}}}, [](Graph&, V x) { return max_pool2d(x[0], 2, 2, 1); });
    row("max_pool2d overlapping", OpCode::max_pool2d_at, {{{2, 2, 5, 5}}},
        [](Graph&, V x) { return max_pool2d(x[0], 3, 2, 1); });
    row("max_pool2d_at", OpCode::max_pool2d_at, {{{2, 2, 5, 5}}, {{2, 2, 5, 5}}},
        [](Graph&, V x) { return max_pool2d_at(x[0], x[1], 3, 2, 1); });
    row("max_unpool2d", OpCode::max_unpool2d, {{{2, 2, 5, 5}}, {{2, 2, 3, 3}}},
        [](Graph&, V x) { return max_unpool2d(x[0], x[1], 3, 2, 1); });
    row("upsample_nearest2d", OpCode::upsample_nearest2d, {{{2, 2, 3, 3}}},
        [](Graph&, V x) { return square(upsample_nearest2d(x[0], 2)); });
    row("sum_pool2d", OpCode::sum_pool2d, {{{2, 2, 4, 4}}}, [](Graph&, V x) { return square(sum_pool2d(x[0], 2)); });
    // Batch top-k: per column, the 2 largest of 5 rows kept (the gradient flows to those only).
    row("batch_topk", OpCode::batch_topk_mask, {{{5, 4}}}, [](Graph&, V x) { return square(batch_topk(x[0], 2)); });
    row("batch_topk_at", OpCode::batch_topk_mask, {{{5, 4}}, {{5, 4}}},
        [](Graph&, V x) { return batch_topk_at(x[0], x[1], 3) * x[1]; });
    // Of a product: relu_grad makes it one masked product (ops/elementwise.cpp).
    row("batch_topk_at of a product", OpCode::masked_matmul, {{{5, 4}}, {{5, 3}}, {{3, 4}}},
        [](Graph&, V x) { return square(batch_topk_at(x[0], matmul(x[1], x[2]), 2)); });
    // Batch normalisation's training pass and its two gradient ops (whose own gradients are
    // their graph-code definition's).
    row("batch_norm", OpCode::batch_norm, {{{5, 3}}, {{3}}, {{3}}},
        [](Graph&, V x) { return square(batch_norm(x[0], x[1], x[2], 1e-5f)) * x[0]; });
    row("batch_norm_dw", OpCode::batch_norm_dw, {{{5, 3}}, {{5, 3}}},
        [](Graph&, V x) { return square(batch_norm_dw(x[0], x[1], 1e-5f)); });
    row("batch_norm_dx", OpCode::batch_norm_dx, {{{5, 3}}, {{3}}, {{5, 3}}},
        [](Graph&, V x) { return square(batch_norm_dx(x[0], x[1], x[2], 1e-5f)); });
    row("batch_moments", OpCode::batch_moments, {{{5, 3}}}, [](Graph&, V x) { return square(batch_moments(x[0])); });
    // The sum over the ranks of a data-parallel run: in one process, the parts packed.
    row("allreduce_sum", OpCode::allreduce_sum, {{{3, 4}}, {{5}}}, [](Graph&, V x) {
      std::vector<Value> each = allreduce_sum_each({x[0], x[1]});
      return sum(square(each[0])) + sum(each[1] * x[1]);
    });
    // Losses.
    row("bce", OpCode::bce, {prob, {m, 0, 1}}, [](Graph&, V x) { return bce(x[0], x[1]); });
    row("bce_with_logits", OpCode::bce_with_logits, {{m, -3, 3}, {m, 0, 1}},
        [](Graph&, V x) { return bce_with_logits(x[0], x[1]); });
    row("mse", OpCode::mse, {any, any}, [](Graph&, V x) { return mse(x[0], x[1]); });
    row("kl_normal", OpCode::kl_normal, {any, any}, [](Graph&, V x) { return kl_normal(x[0], x[1]); });
    // Random fills, as models use them: fixed noise mixed into a differentiable expression.
    row("uniform", OpCode::uniform, {any}, [](Graph& g, V x) { return x[0] * uniform(step_of(g), {3, 4}, 7, -1, 2); });
    row("normal", OpCode::normal, {any, any}, [](Graph& g, V x) {
      return x[0] + exp(x[1] * 0.5f) * normal(step_of(g), {3, 4}, 7);  // the reparameterisation trick
    });
    row("bernoulli", OpCode::bernoulli, {any}, [](Graph& g, V x) { return x[0] * bernoulli(step_of(g), {3, 4}, 7, 0.5f); });
    return c;
  }();
  return cases;
}

}  // namespace ag::testing
