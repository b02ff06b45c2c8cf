// Every op on CUDA against the CPU: one row per op (a table, as the ops are alike), each row a
// small graph built twice, once per device, from the same code and the same data. Rows cover
// the shapes each kernel treats apart: every broadcast layout of the zips, every transpose of
// matmul and its bias, multi-block reductions, empty reductions, all axes of the shape ops.
// Each graph runs three times (eager, captured, replayed) with new input data every run, and
// every output and external buffer must match the CPU's to a normalised squared error of 1e-6
// in f32 (1e-12 in f64).
#include <set>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/cuda/kernels.h"
#include "cuda_harness.h"
#include "op_table.h"

namespace ag::cudatest {

namespace {

using D = DeviceGraph&;
using Outs = std::vector<Value>;

struct ParityRow {
  std::string name;
  OpCode op;
  std::function<Outs(D)> build;
};

struct Range {
  double lo, hi;
};
constexpr Range any{-1, 1}, wide_range{-3, 3}, positive{0.1, 3}, denominators{0.5, 2}, probability{0.02, 0.98},
    unit{0, 1};
const Shape matrix{37, 129};

// f(x), and f of a value that dies there, which the plan computes in place.
Outs unary_outputs(D d, Value (*f)(Value), Range r) {
  Value x = d.input(matrix, r.lo, r.hi);
  return {f(x), f(x * 1.0f)};
}

// z = f(a, b) in every broadcast layout: full, row, column and scalar, on either side.
Outs zip_outputs(D d, Value (*f)(Value, Value), Range ra, Range rb) {
  struct Layout {
    Shape a, b;
  };
  const Layout layouts[] = {{{37, 129}, {37, 129}}, {{37, 129}, {129}},  {{1, 129}, {37, 129}}, {{37, 1}, {37, 129}},
                            {{37, 129}, {37, 1}},   {{}, {37, 129}},     {{37, 129}, {}},        {{1, 129}, {37, 1}},
                            {{2, 3, 40}, {40}},     {{2, 3, 40}, {2, 3, 1}}};
  Outs out;
  for (const Layout& l : layouts) out.push_back(f(d.input(l.a, ra.lo, ra.hi), d.input(l.b, rb.lo, rb.hi)));
  Value a = d.input(matrix, ra.lo, ra.hi);
  out.push_back(f(a * 1.0f, d.input(matrix, rb.lo, rb.hi)));  // in place over its first operand
  return out;
}

// A loss over a tensor spread over several reduction blocks, and over a tiny one.
Outs loss_outputs(D d, Value (*f)(Value, Value), Range ra, Range rb) {
  return {f(d.input({50, 300}, ra.lo, ra.hi), d.input({50, 300}, rb.lo, rb.hi)),
          f(d.input({3, 4}, ra.lo, ra.hi), d.input({3, 4}, rb.lo, rb.hi))};
}

Value matmul_of(D d, int64_t m, int64_t k, int64_t n, bool ta, bool tb) {
  Value a = d.input(ta ? Shape{k, m} : Shape{m, k}), b = d.input(tb ? Shape{n, k} : Shape{k, n});
  return matmul(a, b, ta, tb);
}

std::vector<ParityRow> make_rows() {
  std::vector<ParityRow> rows;
  auto row = [&](std::string name, OpCode op, std::function<Outs(D)> build) {
    rows.push_back(ParityRow{std::move(name), op, std::move(build)});
  };
  // Leaves, read back as outputs: uploaded inputs, constants, external buffers.
  row("input", OpCode::input, [](D d) { return Outs{d.input({6, 7}), d.input({})}; });
  row("constant", OpCode::constant, [](D d) {
    HostTensor c(Shape{2, 3}, d.dtype());
    for (int64_t i = 0; i < c.numel(); ++i) c.set(i, 0.5 * double(i) - 1);
    return Outs{constant(d.g, c), constant(d.g, 2.5, {3, 3}, d.dtype()), d.input({2, 3}) * constant(d.g, c)};
  });
  row("external", OpCode::external, [](D d) {
    Value w = d.external({6, 7});
    return Outs{w, w * d.input({6, 7})};
  });
  // Unary maps.
  row("neg", OpCode::neg, [](D d) { return unary_outputs(d, neg, any); });
  row("exp", OpCode::exp, [](D d) { return unary_outputs(d, exp, wide_range); });
  row("log", OpCode::log, [](D d) { return unary_outputs(d, log, positive); });
  row("sqrt", OpCode::sqrt, [](D d) { return unary_outputs(d, sqrt, positive); });
  row("square", OpCode::square, [](D d) { return unary_outputs(d, square, wide_range); });
  row("abs", OpCode::abs, [](D d) { return unary_outputs(d, abs, any); });
  row("sign", OpCode::sign, [](D d) { return unary_outputs(d, sign, any); });
  row("relu", OpCode::relu, [](D d) { return unary_outputs(d, relu, any); });
  row("sigmoid", OpCode::sigmoid, [](D d) { return unary_outputs(d, sigmoid, {-8, 8}); });
  row("tanh", OpCode::tanh, [](D d) { return unary_outputs(d, tanh, wide_range); });
  row("softplus", OpCode::softplus, [](D d) { return unary_outputs(d, softplus, {-20, 20}); });
  row("clamp", OpCode::clamp, [](D d) { return unary_outputs(d, [](Value x) { return clamp(x, -0.5f, 0.8f); }, any); });
  row("affine", OpCode::affine, [](D d) { return unary_outputs(d, [](Value x) { return affine(x, -1.5f, 0.25f); }, any); });
  // Binary zips.
  row("add", OpCode::add, [](D d) { return zip_outputs(d, add, any, any); });
  row("sub", OpCode::sub, [](D d) { return zip_outputs(d, sub, any, any); });
  row("mul", OpCode::mul, [](D d) { return zip_outputs(d, mul, any, wide_range); });
  row("div", OpCode::div, [](D d) { return zip_outputs(d, div, any, denominators); });
  row("relu_grad", OpCode::relu_grad, [](D d) { return zip_outputs(d, relu_grad, any, any); });
  row("sigmoid_grad", OpCode::sigmoid_grad, [](D d) { return zip_outputs(d, sigmoid_grad, unit, any); });
  row("tanh_grad", OpCode::tanh_grad, [](D d) { return zip_outputs(d, tanh_grad, any, any); });
  row("clamp_grad", OpCode::clamp_grad, [](D d) {
    return zip_outputs(d, [](Value x, Value g) { return clamp_grad(x, g, -0.5f, 0.8f); }, any, any);
  });
  // Losses.
  row("bce", OpCode::bce, [](D d) { return loss_outputs(d, bce, probability, unit); });
  row("bce_with_logits", OpCode::bce_with_logits, [](D d) { return loss_outputs(d, bce_with_logits, {-6, 6}, unit); });
  row("mse", OpCode::mse, [](D d) { return loss_outputs(d, mse, any, any); });
  row("kl_normal", OpCode::kl_normal, [](D d) { return loss_outputs(d, kl_normal, any, {-2, 2}); });
  // Random fills: the step counter from an input and from a constant, a seed above 32 bits.
  row("uniform", OpCode::uniform, [](D d) {
    return Outs{uniform(d.scalar_input(3), {40, 50}, 0x123456789ull, -1, 2), uniform(d.constant(0), {7}, 43)};
  });
  row("normal", OpCode::normal, [](D d) {
    return Outs{normal(d.scalar_input(3), {40, 50}, 0x123456789ull, 0.5f, 2), normal(d.constant(100000), {7}, 43)};
  });
  row("bernoulli", OpCode::bernoulli, [](D d) {
    Value x = d.input({40, 50});
    return Outs{bernoulli(d.scalar_input(3), {40, 50}, 0x123456789ull, 0.3f), x * bernoulli(d.constant(5), {40, 50}, 9, 0.75f)};
  });
  // Matrix products: every transpose pair, small and cuBLAS-sized, the bias row, K = 0.
  row("matmul", OpCode::matmul, [](D d) {
    Outs out;
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        out.push_back(matmul_of(d, 5, 7, 3, ta, tb));
        out.push_back(matmul_of(d, 33, 70, 45, ta, tb));
      }
    out.push_back(linear(d.input({6, 9}), d.input({4, 9}), d.input({4})));
    out.push_back(matmul(d.input({9, 6}), d.input({9, 4}), true, false, d.input({1, 4})));
    out.push_back(matmul(d.input({5, 0}), d.input({0, 3})));
    out.push_back(matmul(d.input({5, 0}), d.input({0, 3}), false, false, d.input({3})));
    return out;
  });
  // Reductions: several blocks, one block, a scalar, nothing at all.
  row("sum", OpCode::sum, [](D d) {
    return Outs{sum(d.input({300, 100})), sum(d.input({7, 1000})), sum(d.input({3, 4})), sum(d.input({})),
                sum(d.input({2, 0}))};
  });
  row("sum_axis", OpCode::sum_axis, [](D d) {
    Value x = d.input({4, 300, 5}), y = d.input({6, 1000});
    return Outs{sum(x, 0), sum(x, 1), sum(x, 2), sum(y, 0), sum(y, 1), sum(d.input({3, 0, 2}), 1)};
  });
  row("logsumexp", OpCode::logsumexp, [](D d) {
    Value x = d.input({4, 30, 5});
    Value groups = d.input({150, 5, 10});
    return Outs{logsumexp(x, 0),          logsumexp(x, 1),         logsumexp(x, 2), log_softmax(d.input({150, 10}), 1),
                log_softmax(groups, 2), softmax(groups * 3.0f, 2)};
  });
  row("broadcast_to", OpCode::broadcast_to, [](D d) {
    return Outs{broadcast_to(d.input({3, 1}), {2, 3, 4}), broadcast_to(d.input({4}), {2, 3, 4}),
                broadcast_to(d.input({}), {5, 6}), broadcast_to(d.input({1, 3, 1, 2}), {2, 3, 4, 2}),
                broadcast_to(d.input({2, 1, 4}), {2, 3, 4})};
  });
  // Shapes.
  row("reshape", OpCode::reshape, [](D d) {
    Value x = d.input({6, 8});
    return Outs{square(reshape(x, {4, 12})), reshape(x * 2.0f, {2, 24}), reshape(x, {48})};
  });
  row("permute", OpCode::permute, [](D d) {
    Value x = d.input({3, 4, 5, 6});
    return Outs{permute(x, {3, 1, 0, 2}), transpose(x, 2, 3), transpose(d.input({7, 9}), 0, 1),
                permute(d.input({4, 1, 5}) * 2.0f, {2, 0, 1})};
  });
  row("stop_gradient", OpCode::stop_gradient, [](D d) {
    Value x = d.input({6, 8});
    return Outs{square(stop_gradient(x)), stop_gradient(x * 2.0f) + x};
  });
  row("slice", OpCode::slice, [](D d) {
    Value x = d.input({4, 5, 6});
    return Outs{slice(x, 0, 1, 2), slice(x, 1, 2, 3), slice(x, 2, 0, 4), slice(x, 2, 5, 1)};
  });
  row("pad", OpCode::pad, [](D d) {
    Value x = d.input({4, 5, 6});
    return Outs{pad(x, 0, 1, 7), pad(x, 1, 2, 9), pad(x, 2, 0, 8), pad(x, 2, 3, 9)};
  });
  row("concat", OpCode::concat, [](D d) {
    return Outs{concat({d.input({4, 2, 6}), d.input({4, 3, 6}), d.input({4, 1, 6})}, 1),
                concat({d.input({1, 5}), d.input({3, 5})}, 0), concat({d.input({3, 2}), d.input({3, 4})}, 1),
                concat({d.input({2, 3})}, 0)};
  });
  // The sum over the ranks, here one process's (the packing; NCCL's sum: tests/dist).
  row("allreduce_sum", OpCode::allreduce_sum, [](D d) {
    Value a = d.input({4, 5});
    return Outs{allreduce_sum({a * 2.0f, d.input({3}), d.input({2, 2, 2})}), allreduce_sum({a})};
  });
  // Assign: computed in place in its target, copied from an input, and a GEMM into its target.
  row("assign", OpCode::assign, [](D d) {
    Value t1 = d.external({6, 7}), t2 = d.external({6, 7}), t3 = d.external({5, 3});
    return Outs{assign(t1, t1 + d.input({6, 7}) * 0.5f), assign(t2, d.input({6, 7})),
                assign(t3, matmul(d.input({5, 4}), d.input({4, 3})))};
  });
  // Sizes past what one launch covers, so that every grid-stride loop goes round more than once
  // and the clamped grids are taken: 2.1M elements (> 8192 blocks x 256 threads), 4.4M summed
  // (> 1024 blocks x 4096), 9000 rows of a row sum and 270000 columns of a column sum (> 8192),
  // a convdae-sized image (150 x 32 x 28 x 28 = 3.8M).
  row("exp, large", OpCode::exp, [](D d) { return Outs{exp(d.input({2100, 1000}))}; });
  row("sum, large", OpCode::sum, [](D d) { return Outs{sum(d.input({1100, 4000}))}; });
  row("sum_axis, large", OpCode::sum_axis, [](D d) {
    return Outs{sum(d.input({9000, 3}), 1), sum(d.input({3, 270000}), 0)};
  });
  row("conv2d, large", OpCode::conv2d, [](D d) {  // 4 input channels: the output's size is what counts here
    Value x = d.input({150, 4, 28, 28});
    return Outs{max_pool2d(relu(conv2d(x, d.input({32, 4, 3, 3}), d.input({32}), 1, 1)), 2, 2, 1)};
  });
  // Images (NCHW): with and without bias, stride 2 and padding 1 over an odd size, filters and
  // images that are not square (so height and width cannot be swapped unnoticed).
  row("conv2d", OpCode::conv2d, [](D d) {
    return Outs{conv2d(d.input({3, 4, 9, 9}), d.input({5, 4, 3, 3})),
                conv2d(d.input({3, 3, 9, 9}), d.input({4, 3, 3, 3}), d.input({4}), 2, 1),
                conv2d(d.input({3, 3, 9, 11}), d.input({2, 3, 3, 2}), d.input({2}), 1, 1),
                conv2d(d.input({3, 2, 28, 28}), d.input({4, 2, 5, 5}), d.input({4}), 1, 2),
                // padding past the filter: a border of outputs that see no pixel (bias only)
                conv2d(d.input({2, 3, 6, 7}), d.input({2, 3, 3, 2}), d.input({2}), 1, 3)};
  });
  row("conv_transpose2d", OpCode::conv_transpose2d, [](D d) {
    // Outputs 9 x 9, 9 x 9, 10 x 11 (output padding 1) and 28 x 28.
    return Outs{conv_transpose2d(d.input({3, 5, 7, 7}), d.input({5, 4, 3, 3})),
                conv_transpose2d(d.input({3, 4, 5, 5}), d.input({4, 3, 3, 3}), d.input({3}), 2, 1),
                conv_transpose2d(d.input({3, 4, 5, 6}), d.input({4, 3, 3, 2}), {}, 2, 1, 1),
                conv_transpose2d(d.input({3, 4, 14, 14}), d.input({4, 2, 4, 4}), d.input({2}), 2, 1),
                // stride 2 without padding, a stride past the filter (pixels no tap reaches),
                // a strided non-square filter
                conv_transpose2d(d.input({2, 3, 5, 5}), d.input({3, 2, 4, 4}), {}, 2, 0),
                conv_transpose2d(d.input({2, 3, 4, 5}), d.input({3, 2, 2, 2}), d.input({2}), 3, 0),
                conv_transpose2d(d.input({2, 3, 5, 6}), d.input({3, 2, 3, 4}), {}, 2, 1)};
  });
  row("conv2d_filter_grad", OpCode::conv2d_filter_grad, [](D d) {
    return Outs{conv2d_filter_grad(d.input({3, 4, 9, 9}), d.input({3, 5, 7, 7}), 3, 3, 1, 0),
                conv2d_filter_grad(d.input({3, 3, 9, 9}), d.input({3, 4, 5, 5}), 3, 3, 2, 1),
                conv2d_filter_grad(d.input({3, 3, 9, 11}), d.input({3, 2, 9, 12}), 3, 2, 1, 1),
                conv2d_filter_grad(d.input({3, 2, 28, 28}), d.input({3, 4, 28, 28}), 5, 5, 1, 2),
                // 32 x 32 x 3 x 3 = 9216 weights: more blocks than one launch's grid
                conv2d_filter_grad(d.input({1, 32, 6, 6}), d.input({1, 32, 4, 4}), 3, 3, 1, 0)};
  });
  // Batch top-k: a WTA-sized layer, keys apart from values, ties (relu keys: every negative is a
  // zero, the lower rows win) and NaN keys (log of negatives), k = the whole batch.
  row("batch_topk_mask", OpCode::batch_topk_mask, [](D d) {
    Value k = d.input({40, 33}), v = d.input({40, 33});
    return Outs{batch_topk(d.input({150, 100}), 8), batch_topk_at(k, v, 3), batch_topk_at(relu(k), v, 5),
                batch_topk_at(log(k), v, 4), batch_topk(k, 40), batch_topk_mask(k, 6), batch_topk(k, 1)};
  });
  // Batch normalisation's three ops: a layer of the aae's, and a width past a block.
  row("batch_norm", OpCode::batch_norm, [](D d) {
    Value x = d.input({150, 128}), w = d.input({128}), b = d.input({128});
    return Outs{batch_norm(x, w, b, 1e-5f), batch_norm(d.input({7, 130}), d.input({130}), d.input({130}), 1e-5f)};
  });
  row("batch_norm_dw", OpCode::batch_norm_dw, [](D d) {
    return Outs{batch_norm_dw(d.input({150, 64}), d.input({150, 64}), 1e-5f), batch_norm_dw(d.input({7, 130}), d.input({7, 130}), 1e-5f)};
  });
  row("batch_norm_dx", OpCode::batch_norm_dx, [](D d) {
    return Outs{batch_norm_dx(d.input({150, 16}), d.input({16}), d.input({150, 16}), 1e-5f),
                batch_norm_dx(d.input({7, 130}), d.input({130}), d.input({7, 130}), 1e-5f)};
  });
  row("batch_moments", OpCode::batch_moments, [](D d) {
    return Outs{batch_moments(d.input({150, 128})), batch_moments(d.input({7, 130})), batch_moments(d.input({1, 3}))};
  });
  // Masked products: a top-k's mask over a product (the wta's code gradient; the CPU computes
  // the kept entries alone), every transpose pair, a mask of signs.
  row("masked_matmul", OpCode::masked_matmul, [](D d) {
    Outs out{batch_topk_at(d.input({150, 300}), matmul(d.input({150, 64}), d.input({64, 300})), 8)};
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        out.push_back(masked_matmul(ta ? d.input({70, 33}) : d.input({33, 70}), tb ? d.input({45, 70}) : d.input({70, 45}),
                                    d.input({33, 45}), ta, tb));
    return out;
  });
  // Pools: k2 s2 p1 (28 -> 15), k3 s2 p1 and k3 s1 p1 (overlapping windows), ties (keys relu(x):
  // a window of negatives is all zeros, the first wins) and NaN keys (log(x) of negatives).
  row("max_pool2d_at", OpCode::max_pool2d_at, [](D d) {
    Value k = d.input({3, 3, 9, 11}), v = d.input({3, 3, 9, 11});
    return Outs{max_pool2d(d.input({3, 2, 28, 28}), 2, 2, 1), max_pool2d_at(k, v, 3, 2, 1),
                max_pool2d_at(k, v, 3, 1, 1), max_pool2d_at(relu(k), v, 2, 2, 1),
                max_pool2d_at(log(k), v, 3, 2, 1), max_pool2d_at(k, v, 2, 2, 0), max_pool2d_at(k, v, 3, 3, 0)};
  });
  row("max_unpool2d", OpCode::max_unpool2d, [](D d) {
    Value k = d.input({3, 3, 9, 11});
    return Outs{max_unpool2d(d.input({3, 2, 28, 28}), d.input({3, 2, 15, 15}), 2, 2, 1),
                max_unpool2d(k, d.input({3, 3, 5, 6}), 3, 2, 1), max_unpool2d(k, d.input({3, 3, 9, 11}), 3, 1, 1),
                max_unpool2d(relu(k), d.input({3, 3, 5, 6}), 2, 2, 1),
                max_unpool2d(log(k), d.input({3, 3, 5, 6}), 3, 2, 1), max_unpool2d(k, d.input({3, 3, 4, 5}), 2, 2, 0),
                max_unpool2d(k, d.input({3, 3, 3, 3}), 3, 3, 0)};
  });
  row("upsample_nearest2d", OpCode::upsample_nearest2d, [](D d) {
    return Outs{upsample_nearest2d(d.input({3, 2, 9, 11}), 2), upsample_nearest2d(d.input({3, 4, 7, 7}), 3),
                upsample_nearest2d(d.input({2, 2, 5, 5}), 1)};
  });
  row("sum_pool2d", OpCode::sum_pool2d, [](D d) {
    return Outs{sum_pool2d(d.input({3, 2, 18, 22}), 2), sum_pool2d(d.input({3, 4, 9, 9}), 3),
                sum_pool2d(d.input({2, 2, 5, 5}), 1)};
  });
  return rows;
}

const std::vector<ParityRow>& parity_rows() {
  static const std::vector<ParityRow> rows = make_rows();
  return rows;
}

void check_parity(const ParityRow& row, DType dtype, double tolerance) {
  DeviceGraph cpu(Device::cpu, dtype), gpu(Device::cuda, dtype);
  const Outs cpu_out = row.build(cpu), gpu_out = row.build(gpu);
  Executor cpu_ex(compile(cpu_out), Device::cpu), gpu_ex(compile(gpu_out), Device::cuda);
  for (int run = 1; run <= 3; ++run) {  // eager, captured, replayed
    cpu.fill_inputs(cpu_ex, run);
    gpu.fill_inputs(gpu_ex, run);
    cpu_ex.run();
    gpu_ex.run();
    const std::vector<HostTensor> want = read_all(cpu_ex, cpu_out), got = read_all(gpu_ex, gpu_out);
    for (size_t k = 0; k < want.size(); ++k) {
      INFO(row.name << " (" << to_string(dtype) << ") output " << k << " " << want[k].shape().str() << ", run " << run);
      CHECK(got[k].shape() == want[k].shape());
      CHECK(nmse(got[k], want[k]) < tolerance);
    }
    const std::vector<HostTensor> want_ext = cpu.read_externals(), got_ext = gpu.read_externals();
    for (size_t k = 0; k < want_ext.size(); ++k) {
      INFO(row.name << " (" << to_string(dtype) << ") external " << k << ", run " << run);
      CHECK(nmse(got_ext[k], want_ext[k]) < tolerance);
    }
  }
}

}  // namespace

TEST_CASE("the CUDA parity table has a row for every op code", "[cuda]") {
  std::set<int> covered;
  for (const ParityRow& row : parity_rows()) covered.insert(int(row.op));
  for (int op = 0; op < op_count; ++op) {
    INFO("op " << op_name(OpCode(op)) << " has no row in tests/cuda/test_op_parity.cpp");
    CHECK(covered.count(op) == 1);
  }
}

// Without a device too: every row builds, compiles and runs on the CPU (in f32, the cheaper), so
// a shape mistake in a row shows here rather than in the GPU's few minutes.
TEST_CASE("every row of the CUDA parity table builds and runs on the CPU", "[cuda]") {
  for (const ParityRow& row : parity_rows()) {
    INFO(row.name);
    DeviceGraph cpu(Device::cpu, DType::f32);
    const Outs out = row.build(cpu);
    Executor ex(compile(out), Device::cpu);
    cpu.fill_inputs(ex, 1);
    ex.run();
    for (const HostTensor& t : read_all(ex, out)) CHECK(t.numel() > 0);
  }
}

TEST_CASE("the CUDA kernel table runs every op the CPU runs", "[cuda]") {
  for (int op = 0; op < op_count; ++op) {
    const OpCode code = OpCode(op);
    const bool step = op_info(code).kind != OpKind::leaf && !is_alias(code);  // the rest are never steps
    INFO("op " << op_name(code));
    CHECK(cuda::has_kernel(code) == step);
  }
}

TEST_CASE("every op runs on CUDA as on the CPU, in f32", "[cuda]") {
  if (skip_without_device(int(parity_rows().size()))) return;
  for (const ParityRow& row : parity_rows())  // a section each: a row that throws does not hide the rest
    DYNAMIC_SECTION(row.name) { check_parity(row, DType::f32, 1e-6); }
}

TEST_CASE("every op runs on CUDA as on the CPU, in f64", "[cuda]") {
  if (skip_without_device(int(parity_rows().size()))) return;
  for (const ParityRow& row : parity_rows())
    DYNAMIC_SECTION(row.name) { check_parity(row, DType::f64, 1e-12); }
}

// The core tests' op table (tests/core/op_table.cpp, f64), whose rows the gradient checks use:
// the same graphs must give the same values on CUDA. Rows whose graph holds host buffers (its
// external and assign rows) cannot run on a device and are left to the table above.
TEST_CASE("the core op table runs on CUDA as on the CPU", "[cuda]") {
  const auto& cases = testing::op_cases();
  if (skip_without_device(int(cases.size()))) return;
  for (const testing::OpCase& oc : cases) {
    Graph cg, gg;
    std::vector<Value> cin, gin;
    for (size_t k = 0; k < oc.inputs.size(); ++k) {
      cin.push_back(input(cg, oc.inputs[k].shape, fmt::format("x{}", k), DType::f64));
      gin.push_back(input(gg, oc.inputs[k].shape, fmt::format("x{}", k), DType::f64));
    }
    const Value cy = oc.build(cg, cin), gy = oc.build(gg, gin);
    bool on_host = false;
    for (int id = 0; id < gg.size(); ++id) on_host |= gg.node(id).op == OpCode::external;
    if (on_host) continue;
    Executor cex(compile({cy}), Device::cpu), gex(compile({gy}), Device::cuda);
    for (size_t k = 0; k < oc.inputs.size(); ++k) {
      testing::fill_case_input(oc.inputs[k], int(k), cex.input(cin[k]).ptr<double>());
      testing::fill_case_input(oc.inputs[k], int(k), gex.input(gin[k]).ptr<double>());
    }
    cex.run();
    gex.run();
    INFO("core op table row " << oc.name);
    CHECK(nmse(gex.read(gy), cex.read(cy)) < 1e-12);
  }
}

}  // namespace ag::cudatest
