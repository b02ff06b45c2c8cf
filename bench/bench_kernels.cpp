// Google Benchmarks of single kernels on the CPU backend, run through a compiled one-op plan (so
// what is measured is what a training step pays): GEMM in GFLOP/s for the tutorial's shapes
// (minibatch 150, 784 -> 128), their backward products and the variants' largest; every other
// op in GB/s; the optimisers' fused updates.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdlib>
#include <functional>

#include <fmt/format.h>

#include "graph/aegraph.h"
#include "models/optim.h"

using namespace ag;

namespace {

// Builds y = f(inputs) over f32 inputs of the given shapes, fills them and times run(). The
// inputs hold values in [0, 1); with `spread`, the first one holds values in [-spread, spread)
// (saturated logits: exp's argument out of its fast range); `images` >= 0 names an input of
// rows of 784 that is filled like a batch of digits instead (a disc of radius 10 in each
// 28 x 28 image, 60% of its pixels lit, the rest zero), which the sparse products take.
// On CUDA every run waits for the device, so an iteration is the kernel's real time (after the
// first runs, the plan replays as a captured CUDA graph).
void run_plan(benchmark::State& state, std::vector<Shape> shapes, const std::function<Value(std::vector<Value>&)>& f,
              double flops, double bytes, float spread = 0, int images = -1, Device device = Device::cpu) {
  Graph g;
  std::vector<Value> in;
  for (size_t k = 0; k < shapes.size(); ++k) in.push_back(input(g, shapes[k], fmt::format("x{}", k)));
  Value y = f(in);
  Executor ex(compile({y}), device);
  for (const Value& v : in) {
    float* p = ex.input(v).ptr<float>();
    for (int64_t i = 0; i < v.shape().numel(); ++i) p[i] = 0.001f * float(i % 997);
  }
  if (images >= 0) {
    float* p = ex.input(in[size_t(images)]).ptr<float>();
    for (int64_t i = 0; i < in[size_t(images)].shape().numel(); ++i) {
      const int64_t px = i % 784, r = px / 28 - 14, c = px % 28 - 14;
      p[i] = r * r + c * c < 100 && (i * 2654435761u) % 10 < 6 ? 0.001f * float(i % 997 + 1) : 0.0f;
    }
  }
  if (spread > 0) {
    float* p = ex.input(in[0]).ptr<float>();
    for (int64_t i = 0; i < in[0].shape().numel(); ++i) p[i] = spread * (0.002f * float(i % 1000) - 1);
  }
  Backend& b = backend(device);
  for (auto _ : state) {
    ex.run();
    b.synchronize();
  }
  if (flops > 0) state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  if (bytes > 0) state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Without a device a CUDA row is reported as skipped, with the reason.
bool have_device(benchmark::State& state, Device device) {
  if (device == Device::cpu || cuda_available()) return true;
  state.SkipWithError("no CUDA device on this machine");
  return false;
}

// Matrix products: the tutorial's five per step (forward encoder and decoder, the backward
// products for the weights and the hidden layer) and the variants' largest. On the CPU at 1 and
// 2 threads (BM_gemm), and on CUDA where built (BM_gemm_cuda).
struct GemmRow {
  const char* name;
  int64_t m, k, n;
  bool ta, tb;
};
const GemmRow gemm_rows[] = {
    {"enc_fwd_150x784_784x128", 150, 784, 128, false, true},     {"dec_fwd_150x128_128x784", 150, 128, 784, false, true},
    {"dec_dW_784x150_150x128", 784, 150, 128, true, false},      {"dec_dh_150x784_784x128", 150, 784, 128, false, false},
    {"enc_dW_128x150_150x784", 128, 150, 784, true, false},      {"vae_enc_fwd_150x784_784x400", 150, 784, 400, false, true},
    {"vae_dec_dh_150x784_784x400", 150, 784, 400, false, false}, {"deep_fwd1_150x784_784x1000", 150, 784, 1000, false, true},
    {"deep_fwd2_150x1000_1000x500", 150, 1000, 500, false, true}, {"deep_dh1_150x1000_1000x784", 150, 1000, 784, false, false},
    {"vae_head_150x400_400x20", 150, 400, 20, false, true},       {"vae_dz_150x400_400x20", 150, 400, 20, false, false},
};

void BM_gemm(benchmark::State& state, const GemmRow* r, Device device) {
  if (!have_device(state, device)) return;
  if (device == Device::cpu) set_num_threads(int(state.range(0)));
  Shape a = r->ta ? Shape{r->k, r->m} : Shape{r->m, r->k}, b = r->tb ? Shape{r->n, r->k} : Shape{r->k, r->n};
  run_plan(state, {a, b}, [&](std::vector<Value>& x) { return matmul(x[0], x[1], r->ta, r->tb); },
           2.0 * double(r->m * r->n * r->k), 0, 0, -1, device);
}

// The same products as one plain OpenBLAS call on its own threads (Arg: their number), beside
// BM_gemm, which runs them as the CPU backend does (one band per thread, each one
// single-threaded OpenBLAS call): the measurement that keeps the bands (docs/benchmarks.md).
void BM_gemm_openblas(benchmark::State& state, const GemmRow* r) {
  set_num_threads(int(state.range(0)));
  std::vector<float> a(size_t(r->m * r->k)), b(size_t(r->k * r->n)), c(size_t(r->m * r->n));
  for (size_t i = 0; i < a.size(); ++i) a[i] = 0.001f * float(i % 997);
  for (size_t i = 0; i < b.size(); ++i) b[i] = 0.001f * float(i % 997);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, r->ta ? CblasTrans : CblasNoTrans, r->tb ? CblasTrans : CblasNoTrans, int(r->m),
                int(r->n), int(r->k), 1.0f, a.data(), int(r->ta ? r->m : r->k), b.data(), int(r->tb ? r->k : r->n),
                0.0f, c.data(), int(r->n));
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(r->m * r->n * r->k) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  set_num_threads(0);
}

// Two independent products as a step runs them, side by side on the two threads (Arg 1: a
// pair, CompileOptions::pair_matmuls), or one after the other, each in bands (Arg 0): the
// measurement that keeps pairs (docs/benchmarks.md). The VAE's two heads (mu and log-variance:
// 150x400 times 400x20 each, from the same hidden layer), and the tutorial's backward pass (the
// decoder's dW = g^T h, 784x150 times 150x128, beside the hidden layer's dh = g W, 150x784 times
// 784x128).
void BM_gemm_pair(benchmark::State& state, const GemmRow* x, const GemmRow* y) {
  set_num_threads(2);
  Graph g;
  std::vector<Value> products;
  for (const GemmRow* r : {x, y}) {
    Value a = input(g, r->ta ? Shape{r->k, r->m} : Shape{r->m, r->k}, "a");
    Value b = input(g, r->tb ? Shape{r->n, r->k} : Shape{r->k, r->n}, "b");
    products.push_back(matmul(a, b, r->ta, r->tb));
  }
  CompileOptions options;
  options.pair_matmuls = state.range(0) != 0;
  Executor ex(compile(products, options));
  for (const Value& p : products)
    for (int in : g.node(p.id).in) {
      float* d = ex.input(g.value(in)).ptr<float>();
      for (int64_t i = 0; i < g.node(in).shape.numel(); ++i) d[i] = 0.001f * float(i % 997);
    }
  for (auto _ : state) ex.run();
  const double flops = 2.0 * double(x->m * x->n * x->k + y->m * y->n * y->k);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  set_num_threads(0);
}
const GemmRow vae_head{"vae_head", 150, 400, 20, false, true}, tutorial_dec_dW{"dec_dW", 784, 150, 128, true, false},
    tutorial_dh{"dec_dh", 150, 784, 128, false, false};
BENCHMARK_CAPTURE(BM_gemm_pair, vae_heads, &vae_head, &vae_head)->Arg(0)->Arg(1);
BENCHMARK_CAPTURE(BM_gemm_pair, tutorial_dW_dh, &tutorial_dec_dW, &tutorial_dh)->Arg(0)->Arg(1);

// The encoder's products with a batch of images as the sparse operand
// (backends/cpu/sparse_gemm.h); GFLOP/s counts the dense product's work, so the numbers compare
// with BM_gemm's.
void BM_gemm_images(benchmark::State& state, int64_t m, int64_t k, int64_t n, bool ta, bool tb, int images) {
  set_num_threads(int(state.range(0)));
  Shape a = ta ? Shape{k, m} : Shape{m, k}, b = tb ? Shape{n, k} : Shape{k, n};
  run_plan(state, {a, b}, [&](std::vector<Value>& x) { return matmul(x[0], x[1], ta, tb); }, 2.0 * double(m * n * k), 0,
           0, images);
}
BENCHMARK_CAPTURE(BM_gemm_images, enc_fwd_150x784_784x128, 150, 784, 128, false, true, 0)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm_images, enc_dW_128x150_150x784, 128, 150, 784, true, false, 1)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm_images, deep_fwd1_150x784_784x1000, 150, 784, 1000, false, true, 0)->Arg(1)->Arg(2);

// The wta's code gradient: [150, 784] x [784, 1000] kept where its top-k chose (8 of 150 rows
// per column, as a fixed pattern here). Second argument 1: masked_matmul (the kept entries
// alone); 0: the whole product, then relu_grad(mask, .) as before the masked product existed.
// GFLOP/s counts the whole product's work in both.
void BM_masked_product(benchmark::State& state) {
  set_num_threads(int(state.range(0)));
  const int64_t m = 150, k = 784, n = 1000;
  Graph g;
  Value a = input(g, {m, k}, "a"), b = input(g, {k, n}, "b"), mask = input(g, {m, n}, "mask");
  Value y = state.range(1) ? masked_matmul(a, b, mask) : relu_grad(mask, matmul(a, b));
  Executor ex(compile({y}));
  for (Value v : {a, b}) {
    float* p = ex.input(v).ptr<float>();
    for (int64_t i = 0; i < v.shape().numel(); ++i) p[i] = 0.001f * float(i % 997);
  }
  float* p = ex.input(mask).ptr<float>();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) p[i * n + j] = (i * 7 + j * 3) % 19 == 0 ? 1.0f : 0.0f;
  for (auto _ : state) ex.run();
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(m * k * n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  set_num_threads(0);
}
BENCHMARK(BM_masked_product)->Args({1, 0})->Args({1, 1})->Args({2, 0})->Args({2, 1});

// Every op's kernel, one row each, at the tutorial's batch shape ([150, 784]: a batch of images
// or of the decoder's logits; [150, 784] + [784] and [150, 1] for the broadcasts): the inputs
// hold values in [0, 1) (with `spread`, the first in [-spread, spread): saturated logits, where
// glibc's exp would leave its fast vector path). GB/s counts the inputs read and the output
// written. Leaves (input, constant, external) and reshape (an alias) have no kernel; matmul has
// BM_gemm above. A row missing for another op stops the program at start (a ctest lists the
// benchmarks, so that cannot go unnoticed).
struct OpRow {
  const char* name;
  OpCode op;
  std::vector<Shape> inputs;
  std::function<Value(std::vector<Value>&)> build;
  float spread = 0;
};

const Shape batch{150, 784};

const std::vector<OpRow>& op_rows() {
  using X = std::vector<Value>&;
  static const std::vector<OpRow> rows = {
      {"neg", OpCode::neg, {batch}, [](X x) { return neg(x[0]); }},
      {"exp", OpCode::exp, {batch}, [](X x) { return exp(x[0]); }},
      {"log", OpCode::log, {batch}, [](X x) { return log(x[0]); }},
      {"sqrt", OpCode::sqrt, {batch}, [](X x) { return sqrt(x[0]); }},
      {"square", OpCode::square, {batch}, [](X x) { return square(x[0]); }},
      {"abs", OpCode::abs, {batch}, [](X x) { return abs(x[0]); }},
      {"sign", OpCode::sign, {batch}, [](X x) { return sign(x[0]); }},
      {"relu", OpCode::relu, {batch}, [](X x) { return relu(x[0]); }},
      {"sigmoid", OpCode::sigmoid, {batch}, [](X x) { return sigmoid(x[0]); }},
      {"sigmoid_saturated", OpCode::sigmoid, {batch}, [](X x) { return sigmoid(x[0]); }, 120.0f},
      {"tanh", OpCode::tanh, {batch}, [](X x) { return tanh(x[0]); }},
      {"softplus", OpCode::softplus, {batch}, [](X x) { return softplus(x[0]); }},
      {"clamp", OpCode::clamp, {batch}, [](X x) { return clamp(x[0], 0.2f, 0.8f); }},
      {"affine", OpCode::affine, {batch}, [](X x) { return affine(x[0], 2.0f, -1.0f); }},
      {"add", OpCode::add, {batch, batch}, [](X x) { return x[0] + x[1]; }},
      {"add_row", OpCode::add, {batch, Shape{784}}, [](X x) { return x[0] + x[1]; }},
      {"add_column", OpCode::add, {batch, Shape{150, 1}}, [](X x) { return x[0] + x[1]; }},
      {"sub", OpCode::sub, {batch, batch}, [](X x) { return x[0] - x[1]; }},
      {"mul", OpCode::mul, {batch, batch}, [](X x) { return x[0] * x[1]; }},
      {"div", OpCode::div, {batch, batch}, [](X x) { return x[0] / x[1]; }},
      {"relu_grad", OpCode::relu_grad, {batch, batch}, [](X x) { return relu_grad(x[0], x[1]); }},
      {"sigmoid_grad", OpCode::sigmoid_grad, {batch, batch}, [](X x) { return sigmoid_grad(x[0], x[1]); }},
      {"tanh_grad", OpCode::tanh_grad, {batch, batch}, [](X x) { return tanh_grad(x[0], x[1]); }},
      {"clamp_grad", OpCode::clamp_grad, {batch, batch}, [](X x) { return clamp_grad(x[0], x[1], 0.2f, 0.8f); }},
      {"bce", OpCode::bce, {batch, batch}, [](X x) { return bce(x[0], x[1]); }},
      {"bce_with_logits", OpCode::bce_with_logits, {batch, batch}, [](X x) { return bce_with_logits(x[0], x[1]); }},
      {"bce_with_logits_saturated", OpCode::bce_with_logits, {batch, batch},
       [](X x) { return bce_with_logits(x[0], x[1]); }, 120.0f},
      {"mse", OpCode::mse, {batch, batch}, [](X x) { return mse(x[0], x[1]); }},
      {"kl_normal", OpCode::kl_normal, {batch, batch}, [](X x) { return kl_normal(x[0], x[1]); }},
      {"uniform", OpCode::uniform, {Shape{}}, [](X x) { return uniform(x[0], batch, 7); }},  // x[0]: the step
      {"normal", OpCode::normal, {Shape{}}, [](X x) { return normal(x[0], batch, 7); }},
      {"bernoulli", OpCode::bernoulli, {Shape{}}, [](X x) { return bernoulli(x[0], batch, 7, 0.3f); }},
      {"sum", OpCode::sum, {batch}, [](X x) { return sum(x[0]); }},
      {"sum_axis_0", OpCode::sum_axis, {batch}, [](X x) { return sum(x[0], 0); }},  // a bias gradient
      {"sum_axis_1", OpCode::sum_axis, {batch}, [](X x) { return sum(x[0], 1); }},
      {"logsumexp", OpCode::logsumexp, {batch}, [](X x) { return logsumexp(x[0], 1); }},
      // wta's layer: each of 1000 units keeps its top ceil(0.05 x 150) = 8 of the batch.
      {"batch_topk_mask", OpCode::batch_topk_mask, {Shape{150, 1000}}, [](X x) { return batch_topk_mask(x[0], 8); }},
      {"batch_norm", OpCode::batch_norm, {Shape{150, 128}, Shape{128}, Shape{128}},
       [](X x) { return batch_norm(x[0], x[1], x[2], 1e-5f); }},
      {"batch_norm_dw", OpCode::batch_norm_dw, {Shape{150, 128}, Shape{150, 128}},
       [](X x) { return batch_norm_dw(x[0], x[1], 1e-5f); }},
      {"batch_norm_dx", OpCode::batch_norm_dx, {Shape{150, 128}, Shape{128}, Shape{150, 128}},
       [](X x) { return batch_norm_dx(x[0], x[1], x[2], 1e-5f); }},
      {"batch_moments", OpCode::batch_moments, {Shape{150, 128}}, [](X x) { return batch_moments(x[0]); }},
      {"broadcast_to", OpCode::broadcast_to, {Shape{784}}, [](X x) { return broadcast_to(x[0], batch); }},
      // A batch transposed, and images from channels-first to channels-last (strided reads).
      {"permute_rows_cols", OpCode::permute, {batch}, [](X x) { return transpose(x[0], 0, 1); }},
      {"permute_nchw_nhwc", OpCode::permute, {Shape{150, 32, 14, 14}}, [](X x) { return permute(x[0], {0, 2, 3, 1}); }},
      {"slice", OpCode::slice, {batch}, [](X x) { return slice(x[0], 1, 100, 400); }},
      {"pad", OpCode::pad, {Shape{150, 400}}, [](X x) { return pad(x[0], 1, 100, 784); }},
      {"concat", OpCode::concat, {Shape{150, 384}, Shape{150, 400}}, [](X x) { return concat({x[0], x[1]}, 1); }},
      // One process: the packing of a bucket (the tutorial's weight and bias); across ranks:
      // aegraph_bench_allreduce under mpirun.
      {"allreduce_sum", OpCode::allreduce_sum, {Shape{784, 128}, Shape{128}},
       [](X x) { return allreduce_sum({x[0], x[1]}); }},
      // The image ops on the conv models' shapes: 32 channels (convdae, direct loops), one input
      // channel (the first layer, unfolded + OpenBLAS), upconv's stride-2 transposed convolution.
      {"conv2d_32x28_32", OpCode::conv2d, {Shape{150, 32, 28, 28}, Shape{32, 32, 3, 3}},
       [](X x) { return conv2d(x[0], x[1], {}, 1, 1); }},
      {"conv2d_1x28_16", OpCode::conv2d, {Shape{150, 1, 28, 28}, Shape{16, 1, 3, 3}},
       [](X x) { return conv2d(x[0], x[1], {}, 1, 1); }},
      {"conv_transpose2d_32x28_32", OpCode::conv_transpose2d, {Shape{150, 32, 28, 28}, Shape{32, 32, 3, 3}},
       [](X x) { return conv_transpose2d(x[0], x[1], {}, 1, 1); }},
      {"conv_transpose2d_8x8_16_s2", OpCode::conv_transpose2d, {Shape{150, 8, 8, 8}, Shape{8, 16, 4, 4}},
       [](X x) { return conv_transpose2d(x[0], x[1], {}, 2, 1); }},
      // upconv's middle transposed convolution seen from its gradients: the input gradient (a
      // stride-2 convolution) and the filter gradient, both over phase planes.
      {"conv2d_16x16_8_s2", OpCode::conv2d, {Shape{150, 16, 16, 16}, Shape{8, 16, 4, 4}},
       [](X x) { return conv2d(x[0], x[1], {}, 2, 1); }},
      {"conv2d_filter_grad_16x16_8_s2", OpCode::conv2d_filter_grad, {Shape{150, 16, 16, 16}, Shape{150, 8, 8, 8}},
       [](X x) { return conv2d_filter_grad(x[0], x[1], 4, 4, 2, 1); }},
      {"conv2d_filter_grad_32x28_32", OpCode::conv2d_filter_grad, {Shape{150, 32, 28, 28}, Shape{150, 32, 28, 28}},
       [](X x) { return conv2d_filter_grad(x[0], x[1], 3, 3, 1, 1); }},
      {"max_pool2d", OpCode::max_pool2d_at, {Shape{150, 16, 28, 28}}, [](X x) { return max_pool2d(x[0], 2, 2, 1); }},
      {"max_unpool2d", OpCode::max_unpool2d, {Shape{150, 16, 28, 28}, Shape{150, 16, 15, 15}},
       [](X x) { return max_unpool2d(x[0], x[1], 2, 2, 1); }},
      {"upsample_nearest2d", OpCode::upsample_nearest2d, {Shape{150, 16, 14, 14}},
       [](X x) { return upsample_nearest2d(x[0], 2); }},
      {"sum_pool2d", OpCode::sum_pool2d, {Shape{150, 16, 28, 28}}, [](X x) { return sum_pool2d(x[0], 2); }},
      {"assign", OpCode::assign, {batch}, [](X x) {
         static HostTensor target(batch, DType::f32);
         return assign(external(*x[0].graph, target.view(), "target"), x[0]);  // a copy
       }},
  };
  return rows;
}

void BM_op(benchmark::State& state, const OpRow* row, Device device) {
  if (!have_device(state, device)) return;
  if (device == Device::cpu) set_num_threads(int(state.range(0)));
  Shape out_shape;
  double in_bytes = 0;
  for (const Shape& s : row->inputs) in_bytes += 4.0 * double(s.numel());
  run_plan(
      state, row->inputs,
      [&](std::vector<Value>& x) {
        Value y = row->build(x);
        out_shape = y.shape();
        return y;
      },
      0, 0, row->spread, -1, device);
  state.counters["GB/s"] = benchmark::Counter((in_bytes + 4.0 * double(out_shape.numel())) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// The tables' benchmarks: on the CPU at 1 and 2 threads, and on CUDA where the build has it.
const int registered = [] {
#ifdef AEGRAPH_WITH_CUDA
  const bool cuda = true;
#else
  const bool cuda = false;
#endif
  for (const GemmRow& r : gemm_rows) {
    benchmark::RegisterBenchmark(fmt::format("BM_gemm/{}", r.name).c_str(), BM_gemm, &r, Device::cpu)->Arg(1)->Arg(2);
    benchmark::RegisterBenchmark(fmt::format("BM_gemm_openblas/{}", r.name).c_str(), BM_gemm_openblas, &r)->Arg(2);
    if (cuda) benchmark::RegisterBenchmark(fmt::format("BM_gemm_cuda/{}", r.name).c_str(), BM_gemm, &r, Device::cuda);
  }
  std::vector<char> covered(op_count, 0);
  for (const OpRow& row : op_rows()) {
    covered[size_t(row.op)] = 1;
    benchmark::RegisterBenchmark(fmt::format("BM_op/{}", row.name).c_str(), BM_op, &row, Device::cpu)->Arg(1)->Arg(2);
    if (cuda) benchmark::RegisterBenchmark(fmt::format("BM_op_cuda/{}", row.name).c_str(), BM_op, &row, Device::cuda);
  }
  for (int op = 0; op < op_count; ++op) {
    const OpCode code = OpCode(op);
    const bool no_kernel = op_info(code).kind == OpKind::leaf || is_alias(code) || code == OpCode::matmul ||
                           code == OpCode::masked_matmul;  // BM_gemm, BM_masked_product
    if (!covered[size_t(op)] && !no_kernel) {
      fmt::print(stderr, "bench_kernels: no BM_op row for op '{}'\n", op_name(code));
      std::exit(1);
    }
  }
  return 0;
}();

// One optimiser update of a weight as the models make it (models/optim.cpp; the gradient an
// input, as a matrix product's result would be): the state's assigns and the parameter's
// update in one fusion group. Third argument 1: the loop compiled ahead of time, 0: the
// fused-group interpreter (backends/cpu/compiled_groups.h). GB/s counts the gradient read and
// the parameter and state read and written.
void BM_optimiser_update(benchmark::State& state, const char* kind) {
  set_num_threads(int(state.range(1)));
  set_cpu_compiled_groups(state.range(2) != 0);
  const int64_t n = state.range(0);
  ParamStore store(Device::cpu, DType::f32, 0);
  const int w = store.add("w", Shape{n}, Init::Uniform(-0.05f, 0.05f));
  models::OptimConfig config;
  config.kind = kind;
  config.lr = 1e-3;
  std::unique_ptr<models::Optimizer> opt = models::Optimizer::make(config, store);
  Graph g;
  models::GraphParams p(g, store);
  Value grad = input(g, {n}, "grad");
  Executor ex(compile(opt->step(p, {w}, {grad})));
  float* pg = ex.input(grad).ptr<float>();
  for (int64_t i = 0; i < n; ++i) pg[i] = 1e-3f * float(i % 997) - 0.4f;
  for (auto _ : state) ex.run();
  set_cpu_compiled_groups(true);
  const double states = std::string(kind) == "adam" ? 2 : 1;
  state.counters["GB/s"] = benchmark::Counter(4e-9 * double(n) * (1 + 2 * (1 + states)), benchmark::Counter::kIsIterationInvariantRate);
}
// The deep model's first layer (Adagrad), the tutorial's (Adagrad), the VAE's decoder (Adam),
// and one much larger than the caches.
BENCHMARK_CAPTURE(BM_optimiser_update, adagrad, "adagrad")
    ->ArgsProduct({{784 * 1000}, {1, 2}, {0, 1}})->Args({784 * 128, 2, 0})->Args({784 * 128, 2, 1});
BENCHMARK_CAPTURE(BM_optimiser_update, adam, "adam")
    ->ArgsProduct({{784 * 400}, {1, 2}, {0, 1}})->Args({784 * 400 * 16, 2, 0})->Args({784 * 400 * 16, 2, 1});

}  // namespace

BENCHMARK_MAIN();
