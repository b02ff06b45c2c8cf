// Random fills on the device from the CPU's Philox draw functors (ops/functors.h): element i at
// step s is the same number on both backends (draw4 of its group of four). The step is read on the device from the node's
// scalar input when the kernel runs, never copied to the host at launch: a captured step graph
// replays with the counter's current value, so each replay draws new noise.
#include "backends/cuda/device_loops.cuh"
#include "ops/functors.h"

namespace ag::cuda {

namespace {

// One thread per group of four elements, as the CPU's fill: element i is draw4(i / 4)[i % 4].
template <class D, class T>
__global__ void fill_kernel(const D d, const T* step_counter, T* y, int64_t n) {
  const uint32_t step = uint32_t(*step_counter);  // as the CPU: uint32 of the scalar's value
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = grid_start(); g < groups; g += grid_stride()) {
    T v[4];
    d.template draw4<T>(uint64_t(g), step, v);
    for (int j = 0; j < 4 && 4 * g + j < n; ++j) y[4 * g + j] = v[j];
  }
}

template <class D, class T>
void launch_fill(const KernelCall& c, const Context& ctx) {
  const int64_t n = c.out.numel();
  if (n == 0) return;
  fill_kernel<<<grid_for((n + 3) / 4), block_threads, 0, ctx.stream>>>(D(c.node->attrs), c.in[0].ptr<T>(),
                                                                       c.out.ptr<T>(), n);
  check_launch(op_name(c.node->op));
}

template <class D>
void random_fill(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_fill<D, float>(c, ctx) : launch_fill<D, double>(c, ctx);
}

}  // namespace

void register_random_kernels(Launcher* k) {
#define AG_CUDA_RANDOM(name, D) k[int(OpCode::name)] = random_fill<fn::D>;
  AG_RANDOM_OPS(AG_CUDA_RANDOM)
#undef AG_CUDA_RANDOM
}

}  // namespace ag::cuda
