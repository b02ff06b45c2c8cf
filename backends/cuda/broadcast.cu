// broadcast_to and permute on the device: the strided gather y[idx] = x[sum_k idx_k *
// in_stride[k]], rank <= 4, with the strides worked out on the host by the functions the CPU
// kernel uses (ops/broadcast.h); the kernel maps each output index to its source.
#include "backends/cuda/device_loops.cuh"
#include "ops/broadcast.h"

namespace ag::cuda {

namespace {

template <class T>
__global__ void gather_kernel(const GatherStrides g, const T* x, T* y, int64_t n) {
  for (int64_t k = grid_start(); k < n; k += grid_stride()) {
    int64_t rest = k, src = 0;
    for (int axis = 3; axis >= 0; --axis) {
      const int64_t coord = rest % g.out_dim[axis];
      rest /= g.out_dim[axis];
      src += coord * g.in_stride[axis];
    }
    y[k] = x[src];
  }
}

template <class T>
void launch_gather(const KernelCall& c, const Context& ctx, const GatherStrides& g, const char* op) {
  const int64_t n = c.out.numel();
  if (n == 0) return;
  gather_kernel<<<grid_for(n), block_threads, 0, ctx.stream>>>(g, c.in[0].ptr<T>(), c.out.ptr<T>(), n);
  check_launch(op);
}

void gather(const KernelCall& c, const Context& ctx, const GatherStrides& g, const char* op) {
  c.out.dtype == DType::f32 ? launch_gather<float>(c, ctx, g, op) : launch_gather<double>(c, ctx, g, op);
}

void broadcast_to(const KernelCall& c, const Context& ctx) {
  gather(c, ctx, broadcast_strides(c.out.shape, c.in[0].shape), "broadcast_to");
}
void permute(const KernelCall& c, const Context& ctx) {
  gather(c, ctx, permute_strides(c.in[0].shape, c.node->attrs.i), "permute");
}

}  // namespace

void register_broadcast_kernel(Launcher* k) {
  k[int(OpCode::broadcast_to)] = broadcast_to;
  k[int(OpCode::permute)] = permute;
}

}  // namespace ag::cuda
