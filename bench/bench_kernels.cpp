// Google Benchmarks of single kernels on the CPU backend, run through a compiled one-op plan (so
// what is measured is what a training step pays): GEMM in GFLOP/s for the tutorial's shapes
// (minibatch 150, 784 -> 128) and their backward products, and elementwise ops in GB/s.
#include <benchmark/benchmark.h>

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
void run_plan(benchmark::State& state, std::vector<Shape> shapes, const std::function<Value(std::vector<Value>&)>& f,
              double flops, double bytes, float spread = 0, int images = -1) {
  Graph g;
  std::vector<Value> in;
  for (size_t k = 0; k < shapes.size(); ++k) in.push_back(input(g, shapes[k], fmt::format("x{}", k)));
  Value y = f(in);
  Executor ex(compile({y}));
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
  for (auto _ : state) ex.run();
  if (flops > 0) state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  if (bytes > 0) state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The tutorial's five matrix products per step: forward encoder and decoder, and the backward
// products for the weights and the hidden layer.
void BM_gemm(benchmark::State& state, int64_t m, int64_t k, int64_t n, bool ta, bool tb) {
  set_num_threads(int(state.range(0)));
  Shape a = ta ? Shape{k, m} : Shape{m, k}, b = tb ? Shape{n, k} : Shape{k, n};
  run_plan(state, {a, b}, [&](std::vector<Value>& x) { return matmul(x[0], x[1], ta, tb); }, 2.0 * double(m * n * k), 0);
}
BENCHMARK_CAPTURE(BM_gemm, enc_fwd_150x784_784x128, 150, 784, 128, false, true)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm, dec_fwd_150x128_128x784, 150, 128, 784, false, true)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm, dec_dW_784x150_150x128, 784, 150, 128, true, false)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm, dec_dh_150x784_784x128, 150, 784, 128, false, false)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm, enc_dW_128x150_150x784, 128, 150, 784, true, false)->Arg(1)->Arg(2);
// The same products with a batch of images as the sparse operand (backends/cpu/sparse_gemm.h);
// GFLOP/s counts the dense product's work, so the numbers compare with BM_gemm's.
void BM_gemm_images(benchmark::State& state, int64_t m, int64_t k, int64_t n, bool ta, bool tb, int images) {
  set_num_threads(int(state.range(0)));
  Shape a = ta ? Shape{k, m} : Shape{m, k}, b = tb ? Shape{n, k} : Shape{k, n};
  run_plan(state, {a, b}, [&](std::vector<Value>& x) { return matmul(x[0], x[1], ta, tb); }, 2.0 * double(m * n * k), 0,
           0, images);
}
BENCHMARK_CAPTURE(BM_gemm_images, enc_fwd_150x784_784x128, 150, 784, 128, false, true, 0)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm_images, enc_dW_128x150_150x784, 128, 150, 784, true, false, 1)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm_images, deep_fwd1_150x784_784x1000, 150, 784, 1000, false, true, 0)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm, vae_enc_fwd_150x784_784x400, 150, 784, 400, false, true)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm, vae_dec_dh_150x784_784x400, 150, 784, 400, false, false)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm, deep_fwd1_150x784_784x1000, 150, 784, 1000, false, true)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm, deep_fwd2_150x1000_1000x500, 150, 1000, 500, false, true)->Arg(1)->Arg(2);
BENCHMARK_CAPTURE(BM_gemm, deep_dh1_150x1000_1000x784, 150, 1000, 784, false, false)->Arg(1)->Arg(2);

void BM_unary(benchmark::State& state, Value (*f)(Value), float spread = 0) {
  set_num_threads(int(state.range(1)));
  const int64_t n = state.range(0);
  run_plan(state, {Shape{n}}, [&](std::vector<Value>& x) { return f(x[0]); }, 0, 8.0 * double(n), spread);
}
BENCHMARK_CAPTURE(BM_unary, sigmoid, sigmoid)->Args({150 * 784, 1})->Args({150 * 784, 2});
BENCHMARK_CAPTURE(BM_unary, sigmoid_saturated, sigmoid, 120.0f)->Args({150 * 784, 1})->Args({150 * 784, 2});
BENCHMARK_CAPTURE(BM_unary, relu, relu)->Args({150 * 784, 1})->Args({150 * 784, 2});
BENCHMARK_CAPTURE(BM_unary, exp, exp)->Args({150 * 784, 1})->Args({150 * 784, 2});
BENCHMARK_CAPTURE(BM_unary, log, log)->Args({150 * 784, 1})->Args({150 * 784, 2});

void BM_binary(benchmark::State& state, Value (*f)(Value, Value)) {
  set_num_threads(int(state.range(1)));
  const int64_t n = state.range(0);
  run_plan(state, {Shape{n}, Shape{n}}, [&](std::vector<Value>& x) { return f(x[0], x[1]); }, 0, 12.0 * double(n));
}
BENCHMARK_CAPTURE(BM_binary, mul, mul)->Args({150 * 784, 1})->Args({150 * 784, 2});
BENCHMARK_CAPTURE(BM_binary, sigmoid_grad, sigmoid_grad)->Args({150 * 784, 1})->Args({150 * 784, 2});

void BM_loss(benchmark::State& state, Value (*f)(Value, Value), float spread = 0) {
  set_num_threads(int(state.range(1)));
  const int64_t n = state.range(0);
  run_plan(state, {Shape{n}, Shape{n}}, [&](std::vector<Value>& x) { return f(x[0], x[1]); }, 0, 8.0 * double(n),
           spread);
}
BENCHMARK_CAPTURE(BM_loss, bce_with_logits, bce_with_logits)->Args({150 * 784, 1})->Args({150 * 784, 2});
BENCHMARK_CAPTURE(BM_loss, bce_with_logits_saturated, bce_with_logits, 120.0f)->Args({150 * 784, 1})->Args({150 * 784, 2});

void BM_bias_grad(benchmark::State& state) {  // sum over the batch axis, as a bias gradient
  set_num_threads(int(state.range(0)));
  run_plan(state, {Shape{150, 784}}, [](std::vector<Value>& x) { return sum(x[0], 0); }, 0, 4.0 * 150 * 784);
}
BENCHMARK(BM_bias_grad)->Arg(1)->Arg(2);

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
