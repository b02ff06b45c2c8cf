// broadcast_to on the device: y[idx] = x[idx with the broadcast axes pinned to 0], rank <= 4.
// The strides are worked out on the host, exactly as the CPU kernel does (a stride of 0 on a
// stretched axis), and the kernel maps each output index to its source.
#include "backends/cuda/device_loops.cuh"

namespace ag::cuda {

namespace {

struct BroadcastStrides {
  int64_t out_dim[4];   // the output's dimensions, right-aligned into 4 axes
  int64_t in_stride[4];  // the input's stride on each of them, 0 where it is stretched
};

BroadcastStrides strides_for(const Shape& out, const Shape& in) {
  BroadcastStrides b{{1, 1, 1, 1}, {0, 0, 0, 0}};
  const int r = out.rank;
  int64_t stride = 1;
  for (int k = r - 1; k >= 0; --k) {
    b.out_dim[4 - r + k] = out.dim[k];
    const int ik = in.rank - r + k;
    const int64_t d = ik >= 0 ? in.dim[ik] : 1;
    b.in_stride[4 - r + k] = d == 1 ? 0 : stride;
    stride *= d;
  }
  return b;
}

template <class T>
__global__ void broadcast_kernel(const BroadcastStrides b, const T* x, T* y, int64_t n) {
  for (int64_t k = grid_start(); k < n; k += grid_stride()) {
    int64_t rest = k, src = 0;
    for (int axis = 3; axis >= 0; --axis) {
      const int64_t coord = rest % b.out_dim[axis];
      rest /= b.out_dim[axis];
      src += coord * b.in_stride[axis];
    }
    y[k] = x[src];
  }
}

template <class T>
void launch_broadcast(const KernelCall& c, const Context& ctx) {
  const int64_t n = c.out.numel();
  if (n == 0) return;
  broadcast_kernel<<<grid_for(n), block_threads, 0, ctx.stream>>>(strides_for(c.out.shape, c.in[0].shape),
                                                                   c.in[0].ptr<T>(), c.out.ptr<T>(), n);
  check_launch("broadcast_to");
}

void broadcast_to(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_broadcast<float>(c, ctx) : launch_broadcast<double>(c, ctx);
}

}  // namespace

void register_broadcast_kernel(Launcher* k) { k[int(OpCode::broadcast_to)] = broadcast_to; }

}  // namespace ag::cuda
