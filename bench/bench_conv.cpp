// aegraph's convolutions against oneDNN's, layer by layer: every convolution of the conv, upconv
// and convdae models at batch 150, each of its three products (forward, the input's gradient,
// the filters' gradient), on 2 threads. oneDNN (Debian's libdnnl, the library PyTorch's CPU
// convolutions run on) runs twice: on NCHW tensors as PyTorch hands them over, and in its own
// blocked layouts (below). It picks its own weight layout; the weight reorders it needs are
// timed, as they are in PyTorch. Built when `make bench-deps` has installed libdnnl-dev;
// docs/benchmarks.md has the numbers.
//
// A layer is named by its image side and its map side: C x H -> F, kernel k, stride s, padding p
// (a transposed convolution of the upconv decoder is the same layer read the other way: its
// forward pass is the "input gradient" product here, and the other way round).
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <vector>

#include "graph/aegraph.h"

using namespace ag;

namespace {

struct Layer {
  const char* name;
  int64_t c, h, f, k, s, p;
  int64_t o() const { return (h + 2 * p - k) / s + 1; }
};

constexpr int64_t batch = 150;
const Layer layers[] = {
    {"conv_enc0_1x28_16", 1, 28, 16, 3, 1, 1},    {"conv_enc1_16x15_8", 16, 15, 8, 3, 1, 1},
    {"conv_enc2_8x8_8", 8, 8, 8, 3, 1, 1},        {"conv_dec0_8x4_8", 8, 4, 8, 3, 1, 1},
    {"conv_dec2_8x16_16_p0", 8, 16, 16, 3, 1, 0}, {"conv_dec3_16x28_1", 16, 28, 1, 3, 1, 1},
    {"upconv_dec0_8x8_8_s2", 8, 8, 8, 4, 2, 1},   {"upconv_dec1_16x16_8_s2", 16, 16, 8, 4, 2, 1},
    {"upconv_dec2_1x28_16_s2", 1, 28, 16, 4, 2, 3}, {"convdae_enc0_1x28_32", 1, 28, 32, 3, 1, 1},
    {"convdae_enc1_32x15_32", 32, 15, 32, 3, 1, 1}, {"convdae_dec0_32x7_32", 32, 7, 32, 3, 1, 1},
    {"convdae_dec1_32x14_32", 32, 14, 32, 3, 1, 1}, {"convdae_dec2_32x28_1", 32, 28, 1, 3, 1, 1},
};

enum Product { forward, input_grad, filter_grad };
const char* product_name[] = {"forward", "input_grad", "filter_grad"};

void fill(float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = float((i * 7919) % 1000) / 1000.0f - 0.5f;
}

// direct = false: every convolution unfolded + OpenBLAS (set_cpu_direct_convolutions(false)).
void BM_aegraph(benchmark::State& state, const Layer* l, Product what, bool direct) {
  set_num_threads(2);
  set_cpu_direct_convolutions(direct);
  Graph g;
  const int64_t o = l->o();
  Value x = input(g, {batch, l->c, l->h, l->h}, "x"), w = input(g, {l->f, l->c, l->k, l->k}, "w"),
        y = input(g, {batch, l->f, o, o}, "y");
  Value out = what == forward       ? conv2d(x, w, {}, l->s, l->p)
              : what == input_grad ? conv_transpose2d(y, w, {}, l->s, l->p, l->h - ((o - 1) * l->s - 2 * l->p + l->k))
                                   : conv2d_filter_grad(x, y, l->k, l->k, l->s, l->p);
  Executor ex(compile({out}));
  for (Value v : {x, w, y})
    if (ex.plan().storage[size_t(v.id)] == Storage::input) fill(ex.input(v).ptr<float>(), v.shape().numel());
  for (auto _ : state) ex.run();
  set_cpu_direct_convolutions(true);
  state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

// blocked = false: NCHW activations, as PyTorch hands its tensors over (oneDNN then unfolds and
// runs its own GEMM, "gemm:jit"); true: every tensor in the layout oneDNN prefers (nChw16c and
// the like: its direct AVX-512 kernels), converted once outside the timing, as a framework that
// kept oneDNN's layouts between layers would. Either way the weights' reorder is timed.
void BM_onednn(benchmark::State& state, const Layer* l, Product what, bool blocked) {
  set_num_threads(2);  // oneDNN's OpenMP runtime follows omp_set_num_threads
  using namespace dnnl;
  using tag = memory::format_tag;
  const memory::data_type f32 = memory::data_type::f32;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const int64_t o = l->o();
  const memory::dims x_dims{batch, l->c, l->h, l->h}, w_dims{l->f, l->c, l->k, l->k}, y_dims{batch, l->f, o, o};
  const memory::dims strides{l->s, l->s}, pad{l->p, l->p};
  const memory::desc x_plain(x_dims, f32, tag::nchw), y_plain(y_dims, f32, tag::nchw),
      w_plain(w_dims, f32, tag::oihw), w_any(w_dims, f32, tag::any);
  const memory::desc x_md = blocked ? memory::desc(x_dims, f32, tag::any) : x_plain,
                     y_md = blocked ? memory::desc(y_dims, f32, tag::any) : y_plain;
  memory xp(x_plain, eng), yp(y_plain, eng), w(w_plain, eng);
  fill(static_cast<float*>(xp.get_data_handle()), batch * l->c * l->h * l->h);
  fill(static_cast<float*>(yp.get_data_handle()), batch * l->f * o * o);
  fill(static_cast<float*>(w.get_data_handle()), l->f * l->c * l->k * l->k);
  const convolution_forward::primitive_desc fwd_pd(
      convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, x_md, w_any, y_md,
                                strides, pad, pad),
      eng);
  // An activation in the layout a primitive wants, converted once, before the timing.
  auto in_layout = [&](const memory::desc& want, memory& plain) {
    if (want == plain.get_desc()) return plain;
    memory m(want, eng);
    reorder(plain, m).execute(s, plain, m);
    s.wait();
    return m;
  };
  state.SetLabel(fwd_pd.impl_info_str());
  if (what == forward) {
    convolution_forward conv(fwd_pd);
    memory wk(fwd_pd.weights_desc(), eng), x = in_layout(fwd_pd.src_desc(), xp), y(fwd_pd.dst_desc(), eng);
    for (auto _ : state) {
      reorder(w, wk).execute(s, w, wk);
      conv.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, wk}, {DNNL_ARG_DST, y}});
      s.wait();
    }
  } else if (what == input_grad) {
    const convolution_backward_data::primitive_desc pd(
        convolution_backward_data::desc(algorithm::convolution_direct, x_md, w_any, y_md, strides, pad, pad), eng,
        fwd_pd);
    state.SetLabel(pd.impl_info_str());
    convolution_backward_data conv(pd);
    memory wk(pd.weights_desc(), eng), y = in_layout(pd.diff_dst_desc(), yp), x(pd.diff_src_desc(), eng);
    for (auto _ : state) {
      reorder(w, wk).execute(s, w, wk);
      conv.execute(s, {{DNNL_ARG_DIFF_DST, y}, {DNNL_ARG_WEIGHTS, wk}, {DNNL_ARG_DIFF_SRC, x}});
      s.wait();
    }
  } else {
    const convolution_backward_weights::primitive_desc pd(
        convolution_backward_weights::desc(algorithm::convolution_direct, x_md, w_any, y_md, strides, pad, pad), eng,
        fwd_pd);
    state.SetLabel(pd.impl_info_str());
    convolution_backward_weights conv(pd);
    memory wk(pd.diff_weights_desc(), eng), x = in_layout(pd.src_desc(), xp), y = in_layout(pd.diff_dst_desc(), yp);
    for (auto _ : state) {
      conv.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, y}, {DNNL_ARG_DIFF_WEIGHTS, wk}});
      reorder(wk, w).execute(s, wk, w);
      s.wait();
    }
  }
  state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

// Side by side: for each layer and product, aegraph (its own choice of path), aegraph unfolded +
// OpenBLAS, oneDNN on NCHW tensors, oneDNN in its own layouts.
const int registered = [] {
  for (const Layer& l : layers)
    for (Product p : {forward, input_grad, filter_grad}) {
      benchmark::RegisterBenchmark(fmt::format("BM_conv/{}/{}/aegraph", l.name, product_name[p]).c_str(), BM_aegraph,
                                   &l, p, true)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(fmt::format("BM_conv/{}/{}/aegraph_unfold", l.name, product_name[p]).c_str(),
                                   BM_aegraph, &l, p, false)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(fmt::format("BM_conv/{}/{}/onednn", l.name, product_name[p]).c_str(), BM_onednn, &l,
                                   p, false)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(fmt::format("BM_conv/{}/{}/onednn_blocked", l.name, product_name[p]).c_str(),
                                   BM_onednn, &l, p, true)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
