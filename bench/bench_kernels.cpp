// Google Benchmarks of single kernels on the CPU backend, run through a compiled one-op plan (so
// what is measured is what a training step pays): GEMM in GFLOP/s for the tutorial's shapes
// (minibatch 150, 784 -> 128) and their backward products, and elementwise ops in GB/s.
#include <benchmark/benchmark.h>

#include <functional>

#include <fmt/format.h>

#include "graph/aegraph.h"

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

// One Adagrad update of a 784 x 1000 weight (the deep model's first layer) as the trainer
// compiles it: the state's assign and the parameter's update in one fusion group. GB/s counts
// the gradient read, the state and parameter read and written.
void BM_adagrad_update(benchmark::State& state) {
  set_num_threads(int(state.range(1)));
  const int64_t n = state.range(0);
  HostTensor w(Shape{n}, DType::f32), acc(Shape{n}, DType::f32);
  for (int64_t i = 0; i < n; ++i) {
    w.set(i, 0.01 * double(i % 101));
    acc.set(i, 0.1);
  }
  Graph g;
  Value grad = input(g, {n}, "grad"), lr = input(g, {1}, "lr");
  Value wv = external(g, w.view(), "w"), sv = external(g, acc.view(), "acc");
  Value s_new = assign(sv, sv + square(grad));
  Value w_new = assign(wv, wv - lr * grad / (sqrt(s_new) + 1e-10f));
  Executor ex(compile({s_new, w_new}));
  float* pg = ex.input(grad).ptr<float>();
  for (int64_t i = 0; i < n; ++i) pg[i] = 1e-3f * float(i % 997);
  *ex.input(lr).ptr<float>() = 1e-6f;
  for (auto _ : state) ex.run();
  state.counters["GB/s"] = benchmark::Counter(20e-9 * double(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_adagrad_update)->Args({784 * 1000, 1})->Args({784 * 1000, 2})->Args({784 * 128, 2});

// One Adam update of a 784 x 400 weight (the variational model's), as the optimiser writes it
// (PyTorch's formula): m, v and the parameter in one fusion group of fifteen ops.
void BM_adam_update(benchmark::State& state) {
  set_num_threads(int(state.range(1)));
  const int64_t n = state.range(0);
  HostTensor w(Shape{n}, DType::f32), m(Shape{n}, DType::f32), v(Shape{n}, DType::f32);
  for (int64_t i = 0; i < n; ++i) w.set(i, 0.01 * double(i % 101));
  Graph g;
  Value grad = input(g, {n}, "grad"), step = input(g, {1}, "step_size"), bc2 = input(g, {1}, "bc2_sqrt");
  Value wv = external(g, w.view(), "w"), mv = external(g, m.view(), "m"), vv = external(g, v.view(), "v");
  Value m_new = assign(mv, mv * 0.9f + grad * 0.1f);
  Value v_new = assign(vv, vv * 0.999f + square(grad) * 0.001f);
  Value w_new = assign(wv, wv - step * m_new / (sqrt(v_new) / bc2 + 1e-8f));
  Executor ex(compile({m_new, v_new, w_new}));
  float* pg = ex.input(grad).ptr<float>();
  for (int64_t i = 0; i < n; ++i) pg[i] = 1e-3f * float(i % 997);
  *ex.input(step).ptr<float>() = 1e-6f;
  *ex.input(bc2).ptr<float>() = 1.0f;
  for (auto _ : state) ex.run();
  state.counters["GB/s"] = benchmark::Counter(28e-9 * double(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_adam_update)->Args({784 * 400, 1})->Args({784 * 400, 2});

}  // namespace

BENCHMARK_MAIN();
